"""What a new environment has that the one that matters does not (for the run log).

The one that matters is the env the repository's default branch last used: a branch is read
against main. Without one, the closest by packages among the repository's envs (else any). A
one-line lock change should say "~ alpha 1.0 -> 2.0, 107 unchanged", not list 108 packages;
the full list stays in the env's manifest.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.cache.usage import read_usage
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


def comparison_base(
    new: Manifest, layout: CacheLayout, repo: str, default_branch: str | None
) -> tuple[Manifest | None, str]:
    """The env to compare `new` with, and what it is (for the log line)."""
    others = [p for p in layout.envs.iterdir() if not p.name.startswith(".") and p.name != new.key]
    usage = {p: read_usage(layout, p.name) for p in others}
    ours = [p for p in others if usage[p].get("repo") == repo]
    if default_branch:
        used = [(usage[p].get("refs", {}).get(default_branch), p) for p in ours]
        for _when, env in sorted(((t, p) for t, p in used if t), reverse=True):
            if (base := Manifest.read(env)) is not None:
                return base, f"{default_branch}'s env"
    return closest(new, ours or others), "the closest env by packages"


def describe(new: Manifest, base: Manifest | None, what: str = "the closest env") -> str:
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
        f"differs from {what} {base.key[:12]} (built for {base.commit[:12]}): "
        f"{shown or 'no package changes'}; "
        f"{same} packages unchanged (full list in the manifest)"
    )
