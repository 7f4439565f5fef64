"""Where everything lives inside the cache folder: every folder, state file, marker and lock.

Like uv's `CacheBucket` and pex's `CacheDir`, this is the one place that spells a path inside the
cache; everything else asks the layout. The tree (`LAYOUT_VERSION` at the root names its shape):

    git/{repo-id}.git                 bare mirrors (one per repository address)
    checkouts/{repo-id}/{commit}/     read-only checkouts, one per commit
    envs/{key}/                       published environments, one per env key
    envs/.bad-{key}-...               damaged environments moved aside (gc removes them)
    uv/                               uv's own cache (unless UV_CACHE_DIR says otherwise)
    state/{key}.json                  which refs and commits used an env, and when
    state/{key}.damaged               set by `verify`: the next use rebuilds the env
    state/{key}.compiled              the env's bytecode is complete
    state/file-hashes.json            sha256 per inode, shared by hardlinked builds
    state/lock-{sha256}.json          a parsed uv.lock's package list
    state/lock-ok-{sha256}            uv found this uv.lock current with this pyproject.toml
    state/interpreters.json           interpreter discovery, remembered
    locks/{key}.build|.use|.state|.compiling, locks/git-{repo-id}.lock, locks/co-{repo-id}-{commit}.use
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sunbeam_sync.cache.locks import FileLock
from sunbeam_sync.errors import BadInputError

BAD_PREFIX = ".bad-"
# Bumped when the tree below changes shape; written at the root on first use.
LAYOUT_VERSION = "1"


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
        version = self.root / "LAYOUT_VERSION"
        if not version.exists():
            version.write_text(LAYOUT_VERSION + "\n")

    def mirror(self, rid: str) -> Path:
        return self.git / f"{rid}.git"

    def checkout(self, rid: str, commit: str) -> Path:
        return self.checkouts / rid / commit

    def env(self, key: str) -> Path:
        return self.envs / key

    # State files: small records beside the envs, each written whole (cache.files.atomic_write).
    def usage_record(self, key: str) -> Path:
        return self.state / f"{key}.json"

    def damage_marker(self, key: str) -> Path:
        return self.state / f"{key}.damaged"

    def compiled_marker(self, key: str) -> Path:
        return self.state / f"{key}.compiled"

    def compiled_markers(self) -> list[Path]:
        """Every env's "bytecode complete" marker (the env's key is the file's stem)."""
        return list(self.state.glob("*.compiled"))

    @property
    def file_hashes(self) -> Path:
        return self.state / "file-hashes.json"

    def lock_summary(self, lock_sha256: str) -> Path:
        return self.state / f"lock-{lock_sha256}.json"

    def lock_checked(self, digest: str) -> Path:
        """Marker: `uv lock --check` passed for the lock and pyproject whose digest this is."""
        return self.state / f"lock-ok-{digest}"

    @property
    def interpreters(self) -> Path:
        return self.state / "interpreters.json"

    def quarantine_path(self, final: Path) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        return final.parent / f"{BAD_PREFIX}{final.name}-{stamp}-{os.urandom(3).hex()}"

    # Locks: "build" serializes building/healing/evicting one key; "use" is shared by every run
    # using the env (a lease) and taken exclusively only by eviction.
    def build_lock(self, key: str) -> FileLock:
        return FileLock(self.locks / f"{key}.build", what=f"the build of environment {key[:12]}")

    def use_lock(self, key: str, *, shared: bool = True) -> FileLock:
        return FileLock(self.locks / f"{key}.use", shared=shared, what=f"environment {key[:12]}")

    def usage_lock(self, key: str) -> FileLock:
        return FileLock(self.locks / f"{key}.state", what="usage record")

    def compile_lock(self, key: str) -> Path:
        """The background compiler's lock file (it takes the flock itself, without waiting)."""
        return self.locks / f"{key}.compiling"

    def mirror_lock(self, rid: str) -> FileLock:
        return FileLock(self.locks / f"git-{rid}.lock", what=f"the git mirror {rid}")

    def checkout_lock(self, rid: str, commit: str, *, shared: bool = True) -> FileLock:
        return FileLock(
            self.locks / f"co-{rid}-{commit}.use", shared=shared, what=f"checkout {commit[:12]}"
        )
