"""Where everything lives inside the cache folder."""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sunbeam_sync.errors import BadInputError
from sunbeam_sync.locks import FileLock

BAD_PREFIX = ".bad-"


def repo_id(repo: str) -> str:
    """Stable folder name for a repository: a readable slug plus a hash of its address."""
    name = urlsplit(repo).path if "://" in repo else repo
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name.rstrip("/")).name.removesuffix(".git"))[:40]
    digest = hashlib.sha256(repo.encode()).hexdigest()[:16]
    return f"{slug or 'repo'}-{digest}"


@dataclass(frozen=True)
class CacheLayout:
    root: Path

    @property
    def git(self) -> Path:
        return self.root / "git"

    @property
    def checkouts(self) -> Path:
        return self.root / "checkouts"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def uv_cache(self) -> Path:
        return self.root / "uv"

    @classmethod
    def open(cls, cache_dir: Path) -> CacheLayout:
        """The layout under `cache_dir`, its folders created."""
        layout = cls(Path(cache_dir).expanduser().absolute())
        try:
            layout.ensure()
        except OSError as exc:
            raise BadInputError(
                f"cache folder {layout.root} cannot be used ({exc.strerror or exc}): set "
                "--cache-dir or SUNBEAM_CACHE_DIR to a folder you can write"
            ) from None
        return layout

    def ensure(self) -> None:
        for path in (self.git, self.checkouts, self.envs, self.locks, self.state):
            path.mkdir(parents=True, exist_ok=True)

    def mirror(self, rid: str) -> Path:
        return self.git / f"{rid}.git"

    def checkout(self, rid: str, commit: str) -> Path:
        return self.checkouts / rid / commit

    def env(self, key: str) -> Path:
        return self.envs / key

    def quarantine_path(self, final: Path) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        return final.parent / f"{BAD_PREFIX}{final.name}-{stamp}-{os.urandom(3).hex()}"

    # Locks: "build" serializes building/healing/evicting one key; "use" is shared by every run
    # using the env (a lease) and taken exclusively only by eviction.
    def build_lock(self, key: str) -> FileLock:
        return FileLock(self.locks / f"{key}.build", what=f"the build of environment {key[:12]}")

    def use_lock(self, key: str, *, shared: bool = True) -> FileLock:
        return FileLock(self.locks / f"{key}.use", shared=shared, what=f"environment {key[:12]}")

    def mirror_lock(self, rid: str) -> FileLock:
        return FileLock(self.locks / f"git-{rid}.lock", what=f"the git mirror {rid}")

    def checkout_lock(self, rid: str, commit: str, *, shared: bool = True) -> FileLock:
        return FileLock(
            self.locks / f"co-{rid}-{commit}.use", shared=shared, what=f"checkout {commit[:12]}"
        )
