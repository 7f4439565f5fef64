#!/usr/bin/env bash
# Removes what .ci/stack-up.sh made: the stack's containers and volumes, its git daemon and its
# throwaway env file. Images stay (they are the build cache of the next stack-up).
set -euo pipefail
source "$(dirname "$0")/stack-lib.sh"

if ! stack_env_is_ours; then
  say "no stack env file at $STACK_ENV_FILE: nothing to take down"
  exit 0
fi
state=$(stack_state_dir)
# The replicas' profile too, so agent-2 and agent-3 go whatever the stack was started with.
stack_compose --profile replicas down --volumes --remove-orphans --timeout 30
if [ -f "$state/git-daemon.pid" ]; then
  kill "$(cat "$state/git-daemon.pid")" 2>/dev/null || true
fi
rm -rf "$state"
rm -f "$STACK_ENV_FILE"
say "removed project $(basename "$state"), its volumes and $STACK_ENV_FILE"
