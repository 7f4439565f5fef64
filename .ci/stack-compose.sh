#!/usr/bin/env bash
# `docker compose ARGS` on the stack .ci/stack-up.sh started (same files, project and env file):
#   bash .ci/stack-compose.sh ps
#   bash .ci/stack-compose.sh logs agent
set -euo pipefail
source "$(dirname "$0")/stack-lib.sh"
stack_env_is_ours || die "no stack env file at $STACK_ENV_FILE: run bash .ci/stack-up.sh first"
stack_compose "$@"
