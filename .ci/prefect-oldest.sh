#!/usr/bin/env bash
# The agent suite against the oldest Prefect that agent_image/pyproject.toml claims (its lower
# bound); `uv run pytest` (the README's command) covers the newest, the one uv.lock pins.
# Builds a throwaway venv: the platform's locked dependencies with that Prefect swapped in (plus
# the few packages whose locked versions it does not accept), the workspace members editable.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"

oldest=$(sed -n 's/.*"prefect>=\([0-9.]*\),.*/\1/p' agent_image/pyproject.toml)
[ -n "$oldest" ] || { echo "prefect-oldest: no prefect>=X lower bound in agent_image/pyproject.toml" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv="$work/venv"

# Locked versions that prefect $oldest does not accept are left to the resolver.
loose='^(prefect|apprise|packaging|python-slugify|ruamel-yaml-clib)=='
uv export --frozen --no-hashes --all-groups --no-emit-workspace --quiet \
  | grep -Ev "$loose" | grep -Ev '^(-e |\./|file:)' > "$work/locked.txt"
cat > "$work/override.txt" <<OVR
prefect==$oldest
apprise>=1.1.0,<2.0.0
packaging>=21.3,<26.3
python-slugify>=5.0,<9.0
ruamel-yaml-clib>=0.2.8
OVR
uv venv --quiet --python 3.11 "$venv"
VIRTUAL_ENV="$venv" uv pip install --quiet -r "$work/locked.txt" -r "$work/override.txt" \
  --override "$work/override.txt" -e contracts -e sync -e agent_image -e api -e stack
echo "prefect-oldest: agent suite on prefect $("$venv/bin/python" -c 'import prefect; print(prefect.__version__)')"
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest tests/agent -p no:cacheprovider
