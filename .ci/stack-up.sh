#!/usr/bin/env bash
# The whole Compose stack on a machine without an image registry, every connection on 127.0.0.1:
# the Docker harness, the registry-less stand-ins for postgres and mongo, the agent image, a
# throwaway env file, and `docker compose up -d --wait` of docker-compose.yml plus the harness
# override (container/stand-ins/docker-compose.harness.yml). The last three lines of stdout:
#   PREFECT_API_URL=...   SUNBEAM_API_URL=...   SUNBEAM_API_KEY=...
# Safe to re-run on a running stack (settings and secrets are kept). `bash .ci/stack-down.sh` undoes it.
#
# Caller's settings (environment), each kept in the env file once chosen:
#   SUNBEAM_STACK_ENV_FILE      the env file (default ./.env; never committed)
#   SUNBEAM_STACK_PROJECT       Compose project name (default sunbeam-stack)
#   SUNBEAM_STACK_AGENTS        1 or 3 agents (3 adds agent-2 and agent-3; default 1)
#   SUNBEAM_STACK_PREFECT_PORT / _API_PORT / _POSTGRES_PORT / _MONGO_PORT / _GIT_PORT
#   SUNBEAM_STACK_AGENT_PORT / _AGENT_2_PORT / _AGENT_3_PORT   (the agents' worker health ports)
#   SUNBEAM_PIPELINE_REPO       the pipeline's git URL; default: SUNBEAM_STACK_GIT_DIR (default this
#                               checkout) served read-only by `git daemon` on 127.0.0.1
#   SUNBEAM_IMAGE, POSTGRES_IMAGE, MONGO_IMAGE, SUNBEAM_STOP_GRACE_PERIOD, SUNBEAM_STOP_TIMEOUT
#   SUNBEAM_STACK_NO_CACHE=1    build every image from scratch (docker build --no-cache)
set -euo pipefail
source "$(dirname "$0")/stack-lib.sh"
t0=$(date +%s)

if [ -f "$STACK_ENV_FILE" ] && ! stack_env_is_ours; then
  die "$STACK_ENV_FILE exists and was not written by stack-up: move it away or set SUNBEAM_STACK_ENV_FILE"
fi

bash "$STACK_ROOT/.ci/docker-setup.sh" >&2

# 1. The env file: caller's value, else the one already chosen, else the default. --------------
secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
declare -A chosen
choose() {  # KEY DEFAULT
  local value="${!1:-}"
  [ -n "$value" ] || value=$(stack_env_get "$1")
  [ -n "$value" ] || value="$2"
  chosen[$1]=$value
  order+=("$1")
}
order=()
secantus=$(awk '/^name = "secantusdb"$/ {getline; print}' "$STACK_ROOT/uv.lock" | cut -d'"' -f2)
choose COMPOSE_PROJECT_NAME "${SUNBEAM_STACK_PROJECT:-sunbeam-stack}"
choose SUNBEAM_STACK_AGENTS 1
choose SUNBEAM_STACK_PREFECT_PORT 4200
choose SUNBEAM_STACK_API_PORT 8080
choose SUNBEAM_STACK_POSTGRES_PORT 55432
choose SUNBEAM_STACK_MONGO_PORT 27017
choose SUNBEAM_STACK_GIT_PORT 9418
choose SUNBEAM_STACK_AGENT_PORT 8081
choose SUNBEAM_STACK_AGENT_2_PORT 8082
choose SUNBEAM_STACK_AGENT_3_PORT 8083
choose SUNBEAM_STACK_GIT_DIR "$(git -C "$STACK_ROOT" rev-parse --show-toplevel)"
repo_default="git://127.0.0.1:${chosen[SUNBEAM_STACK_GIT_PORT]}/$(basename "${chosen[SUNBEAM_STACK_GIT_DIR]}")"
choose SUNBEAM_PIPELINE_REPO "$repo_default"
choose POSTGRES_PASSWORD "$(secret)"
choose MONGO_PASSWORD "$(secret)"
choose SUNBEAM_API_KEY "$(secret)"
choose SUNBEAM_GITHUB_WEBHOOK_SECRET "$(secret)"
choose SUNBEAM_BASE_IMAGE sunbeam-base:bookworm
choose SUNBEAM_IMAGE sunbeam-agent:stack
choose POSTGRES_IMAGE sunbeam-stand-in-postgres:15
choose MONGO_IMAGE "sunbeam-stand-in-mongodb:secantus-$secantus"
choose PREFECT_UI_API_URL "http://127.0.0.1:${chosen[SUNBEAM_STACK_PREFECT_PORT]}/api"
choose SUNBEAM_STOP_GRACE_PERIOD 10m
choose SUNBEAM_STOP_TIMEOUT 540
case "${chosen[SUNBEAM_STACK_AGENTS]}" in 1|3) ;; *) die "SUNBEAM_STACK_AGENTS must be 1 or 3";; esac

umask 077  # the file holds passwords
{
  echo "$STACK_MARK: a throwaway stack's settings and secrets. Never commit it;"
  echo "# bash .ci/stack-down.sh deletes it."
  for key in "${order[@]}"; do echo "$key=${chosen[$key]}"; done
} >"$STACK_ENV_FILE.tmp"
mv "$STACK_ENV_FILE.tmp" "$STACK_ENV_FILE"
umask 022
state=$(stack_state_dir)
mkdir -p "$state"

# 2. The pipeline's repository, served read-only on loopback unless the caller named one. --------
if [ "${chosen[SUNBEAM_PIPELINE_REPO]}" = "$repo_default" ]; then
  pidfile="$state/git-daemon.pid"
  dir=${chosen[SUNBEAM_STACK_GIT_DIR]}
  if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
    git daemon --detach --reuseaddr --informative-errors --listen=127.0.0.1 \
      --port="${chosen[SUNBEAM_STACK_GIT_PORT]}" --pid-file="$pidfile" \
      --base-path="$(dirname "$dir")" --export-all "$dir"
    # --detach returns before the daemon listens.
    for _ in $(seq 1 50); do
      git ls-remote "$repo_default" HEAD >/dev/null 2>&1 && break
      sleep 0.2
    done
    git ls-remote "$repo_default" HEAD >/dev/null \
      || die "git daemon does not answer on $repo_default (port taken? set SUNBEAM_STACK_GIT_PORT)"
  fi
  say "pipeline repository $repo_default (git daemon serving $dir)"
fi

# 3. Images: the stand-ins and the agent, with host networking (builds fetch from mirrors). ----
build() {  # TAG CONTEXT [ARGS...]
  local tag=$1 context=$2 tb
  shift 2
  tb=$(date +%s)
  [ "${SUNBEAM_STACK_NO_CACHE:-}" = 1 ] && set -- --no-cache "$@"
  docker build --network host --quiet --tag "$tag" "$@" "$context" >"$state/build.log" 2>&1 \
    || { tail -n 40 "$state/build.log" >&2; die "building $tag failed (log above)"; }
  say "image $tag ready in $(($(date +%s) - tb)) s"
}
base=(--build-arg "BASE_IMAGE=${chosen[SUNBEAM_BASE_IMAGE]}")
build "${chosen[POSTGRES_IMAGE]}" "$STACK_ROOT/container/stand-ins/postgres" "${base[@]}"
build "${chosen[MONGO_IMAGE]}" "$STACK_ROOT/container/stand-ins/mongodb" "${base[@]}" \
  --build-arg "SECANTUS_VERSION=$secantus"
build "${chosen[SUNBEAM_IMAGE]}" "$STACK_ROOT" --file "$STACK_ROOT/Dockerfile.agent" "${base[@]}"

# 4. Up, waiting for every service's health check. --------------------------------------------
tu=$(date +%s)
if ! stack_compose up --detach --wait --no-build --pull never >&2; then
  stack_compose ps --all >&2 || true
  stack_compose logs --tail 30 >&2 || true
  die "the stack did not become healthy (status and logs above)"
fi
say "all services healthy in $(($(date +%s) - tu)) s (stack-up took $(($(date +%s) - t0)) s)"
say "compose: bash .ci/stack-compose.sh ps   (env file $STACK_ENV_FILE)"

echo "PREFECT_API_URL=http://127.0.0.1:${chosen[SUNBEAM_STACK_PREFECT_PORT]}/api"
echo "SUNBEAM_API_URL=http://127.0.0.1:${chosen[SUNBEAM_STACK_API_PORT]}"
echo "SUNBEAM_API_KEY=${chosen[SUNBEAM_API_KEY]}"
