# Shared by .ci/stack-up.sh, stack-down.sh and stack-compose.sh (sourced, not run).
# The stack's settings live in one throwaway env file (default: .env at the checkout's root;
# SUNBEAM_STACK_ENV_FILE puts it elsewhere, e.g. a test's temporary folder).

STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_ENV_FILE="${SUNBEAM_STACK_ENV_FILE:-$STACK_ROOT/.env}"
STACK_MARK="# Written by .ci/stack-up.sh"
STACK_OVERRIDE="$STACK_ROOT/container/stand-ins/docker-compose.harness.yml"

say() { echo "stack: $*" >&2; }
die() { echo "stack: $*" >&2; exit 1; }

stack_env_is_ours() { [ -f "$STACK_ENV_FILE" ] && head -n1 "$STACK_ENV_FILE" | grep -qF "$STACK_MARK"; }

# The value of KEY in the env file (empty when absent).
stack_env_get() {
  [ -f "$STACK_ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$STACK_ENV_FILE" | tail -n1
}

stack_state_dir() { echo "$STACK_ROOT/.sunbeam/stack/$(stack_env_get COMPOSE_PROJECT_NAME)"; }

# docker compose on the production file plus the harness override, with the stack's env file.
stack_compose() {
  local profiles=()
  [ "$(stack_env_get SUNBEAM_STACK_AGENTS)" = 3 ] && profiles=(--profile replicas)
  docker compose --project-name "$(stack_env_get COMPOSE_PROJECT_NAME)" \
    --project-directory "$STACK_ROOT" --file "$STACK_ROOT/docker-compose.yml" \
    --file "$STACK_OVERRIDE" --env-file "$STACK_ENV_FILE" "${profiles[@]}" "$@"
}
