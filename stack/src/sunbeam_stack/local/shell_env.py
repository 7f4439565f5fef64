"""`sunbeam env`: the running stack's URLs (and local API key) as shell exports."""

from __future__ import annotations

import shlex
from pathlib import Path

from sunbeam_stack.errors import StackError
from sunbeam_stack.local.state import StackState

EXPORTED = ("PREFECT_API_URL", "SUNBEAM_API_URL")


def exports(state_dir: Path) -> str:
    """`export NAME=value` lines for a running stack; StackError when none runs there."""
    values = stack_values(state_dir)
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items())


def stack_values(state_dir: Path) -> dict[str, str]:
    """The running stack's URLs and local API key by variable name; StackError when none runs."""
    state = StackState.read(state_dir)
    if state is None:
        raise StackError(
            f"no stack recorded in {state_dir}: start one with `uv run sunbeam up` "
            "(or pass the --state-dir it uses)"
        )
    if not state.up.alive():
        raise StackError(
            f"the stack recorded in {state_dir} is not running (its `sunbeam up`, pid "
            f"{state.up.pid}, has exited): start it again with `uv run sunbeam up`"
        )
    values = {name: state.urls[name] for name in EXPORTED if name in state.urls}
    if state.api_key_file:
        try:
            values["SUNBEAM_API_KEY"] = Path(state.api_key_file).read_text().strip()
        except OSError as exc:
            raise StackError(f"cannot read the API key file {state.api_key_file}: {exc}") from None
    return values
