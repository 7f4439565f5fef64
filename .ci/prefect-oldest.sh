#!/usr/bin/env bash
# The agent suite against another Prefect release than the lock's: by default the oldest that
# agent_image/pyproject.toml claims (its lower bound), or SUNBEAM_PREFECT_VERSION, which is how a
# wider pin is tried before it is claimed. Extra arguments go to pytest (default: tests/agent).
# Builds a throwaway venv: the platform's locked dependencies with that Prefect swapped in, the
# workspace members editable.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"

oldest=${SUNBEAM_PREFECT_VERSION:-$(sed -n 's/.*"prefect>=\([0-9.]*\),.*/\1/p' agent_image/pyproject.toml)}
[ -n "$oldest" ] || { echo "prefect-oldest: no prefect>=X lower bound in agent_image/pyproject.toml" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv="$work/venv"

# Prefect's own dependencies whose locked versions an older release may not accept are left to
# the resolver; every other package keeps its locked version.
loose='^(prefect|apprise|packaging|python-slugify|ruamel-yaml-clib)=='
echo "prefect==$oldest" > "$work/override.txt"
# Prefect's server before 3.9.1 cannot run on SQLAlchemy 2.1 although its metadata allows it
# (`_insert_scheduled_flow_runs` in prefect/server/models/deployments.py hands the ORM bulk insert
# the hybrid `state` key, which 2.1 refuses: every scheduled run answers 503; 3.9.1 drops the
# key). The suite's server comes from this venv, so such a release gets the newest SQLAlchemy 2.0.
if [ "$(printf '%s\n' "$oldest" 3.9.1 | sort -V | head -n1)" != 3.9.1 ]; then
  loose="${loose%)==}|sqlalchemy)=="
  echo "sqlalchemy<2.1" >> "$work/override.txt"
fi
uv export --frozen --no-hashes --all-groups --no-emit-workspace --quiet \
  | grep -Ev "$loose" | grep -Ev '^(-e |\./|file:)' > "$work/locked.txt"
uv venv --quiet --python 3.11 "$venv"
VIRTUAL_ENV="$venv" uv pip install --quiet -r "$work/locked.txt" -r "$work/override.txt" \
  --override "$work/override.txt" -e contracts -e sync -e agent_image -e api -e stack
echo "prefect-oldest: agent suite on $("$venv/bin/python" -c 'import prefect, sqlalchemy; print("prefect", prefect.__version__, "with sqlalchemy", sqlalchemy.__version__)')"
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -p no:cacheprovider "${@:-tests/agent}"
