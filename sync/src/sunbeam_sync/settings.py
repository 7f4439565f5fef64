"""Configuration from the environment (`SUNBEAM_*`), overridable per call.

A dataclass, not pydantic-settings: every `sunbeam-run` builds one, and importing pydantic and
pydantic-settings cost more (0.2-0.3 s) than the rest of a cache hit. Values are converted and
checked on construction and on assignment alike (`settings.link_mode = "copy"` works), and a bad
one is a `BadInputError` naming the variable, the value and what it accepts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from sunbeam_sync.errors import BadInputError

ENV_PREFIX = "SUNBEAM_"


class LinkMode(StrEnum):
    # auto: reflink ("clone") where the cache's filesystem supports it, else hardlink + read-only files.
    AUTO = "auto"
    CLONE = "clone"
    HARDLINK = "hardlink"
    COPY = "copy"


class Bytecode(StrEnum):
    BACKGROUND = "background"  # publish first, compile .pyc in a detached process
    BUILD = "build"  # compile before publishing (slow builds, fast first start)
    OFF = "off"


class Secret:
    """A value never shown: not in repr, str, logs or JSON (the git token)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sunbeam"


class _Invalid(ValueError):
    pass


def _number(kind: type, minimum: float | None = None) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _Invalid(f"Input should be a valid {kind.__name__ if kind is int else 'number'}")
        try:
            number = kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise _Invalid(f"Input should be {what}, unable to parse {value!r}") from None
        if minimum is not None and number < minimum:
            raise _Invalid(f"Input should be greater than or equal to {minimum:g}")
        return number

    return convert


def _choice(enum: type[StrEnum]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return enum(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum)
            raise _Invalid(f"Input should be one of {allowed}") from None

    return convert


_TRUE, _FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise _Invalid("Input should be a valid boolean (true/false, 1/0, yes/no, on/off)")


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _secret(value: Any) -> Secret:
    if hasattr(value, "get_secret_value"):  # ours, or pydantic's SecretStr
        return Secret(value.get_secret_value())
    return Secret(str(value))


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "cache_dir": lambda v: Path(v),
    "python": _optional(str),
    "git_token": _optional(_secret),
    "git_username": str,
    "link_mode": _choice(LinkMode),
    "bytecode": _choice(Bytecode),
    "lock_timeout": _number(float, 0),
    "git_retries": _number(int),
    "uv_retries": _number(int),
    "retry_backoff": _number(float, 0),
    "allow_external_sources": _flag,
}


@dataclass(init=False)
class SyncSettings:
    """Keyword arguments win over `SUNBEAM_<NAME>` variables (names case-insensitive)."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    python: str | None = None
    git_token: Secret | None = None
    git_username: str = "x-access-token"
    link_mode: LinkMode = LinkMode.AUTO
    bytecode: Bytecode = Bytecode.BACKGROUND
    lock_timeout: float = 1800.0
    git_retries: int = 3
    uv_retries: int = 2
    retry_backoff: float = 0.5
    # Lock sources that are neither a package index nor inside the repository (a wheel or folder
    # elsewhere on this machine, a file:// git repository) are refused unless this is set.
    allow_external_sources: bool = False

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(_CONVERT))
        if unknown:
            raise TypeError(f"SyncSettings has no setting {unknown[0]!r}")
        defaults = {
            f.name: f.default_factory() if f.default is MISSING else f.default  # type: ignore[operator]
            for f in fields(self)
        }
        for name, value in {**defaults, **_from_environment(os.environ), **values}.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CONVERT:
            value = _checked(name, value)
        object.__setattr__(self, name, value)


def _from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    wanted = {ENV_PREFIX + name.upper(): name for name in _CONVERT}
    return {wanted[k.upper()]: v for k, v in environ.items() if k.upper() in wanted}


def _checked(name: str, value: Any) -> Any:
    try:
        return _CONVERT[name](value)
    except _Invalid as exc:
        given = "***" if "token" in name else str(value)[:60]
        raise BadInputError(f"{ENV_PREFIX}{name.upper()}={given!r} is not valid: {exc}") from None
