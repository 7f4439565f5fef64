"""What a new environment has that the closest one already built does not (for the run log).

A one-line lock change should say "~ alpha 1.0 -> 2.0, 107 unchanged", not list 108 packages;
the full list stays in the env's manifest.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sunbeam_sync.envs.manifest import Manifest

_SHOWN = 12


def _packages(manifest: Manifest) -> dict[str, str]:
    return {d.name.lower(): d.version for d in manifest.distributions}


def closest(new: Manifest, envs: Iterable[Path]) -> Manifest | None:
    """The published env sharing the most exact (name, version) pairs with `new`."""
    mine = set(_packages(new).items())
    best, score = None, -1
    for env in envs:
        other = Manifest.read(env)
        if other is None or other.key == new.key:
            continue
        shared = len(mine & set(_packages(other).items()))
        if shared > score:
            best, score = other, shared
    return best


def describe(new: Manifest, base: Manifest | None) -> str:
    pkgs = _packages(new)
    if base is None:
        return f"first environment here: {len(pkgs)} packages (listed in its manifest)"
    old = _packages(base)
    changes = [f"+ {n} {v}" for n, v in sorted(pkgs.items()) if n not in old]
    changes += [f"- {n} {v}" for n, v in sorted(old.items()) if n not in pkgs]
    changes += [
        f"~ {n} {old[n]} -> {v}" for n, v in sorted(pkgs.items()) if n in old and old[n] != v
    ]
    same = sum(1 for n, v in pkgs.items() if old.get(n) == v)
    shown = ", ".join(changes[:_SHOWN]) + (
        f" and {len(changes) - _SHOWN} more" if len(changes) > _SHOWN else ""
    )
    return (
        f"differs from {base.key[:12]} (built for {base.commit[:12]}): {shown or 'no package changes'}; "
        f"{same} packages unchanged (full list in the manifest)"
    )
