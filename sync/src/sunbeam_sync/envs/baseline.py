"""What an environment was when it was built: recorded before the publish, checked on every use.

RECORD files say what each distribution installed, but not what else sits in site-packages (a
planted `.pth` or `sitecustomize.py` runs at every start-up of every ref sharing the env), nor
which interpreter and `pyvenv.cfg` the env was made with, and some packages ship wrong hashes in
RECORD (uv issue 11723). So the build records its own baseline: the interpreter `bin/python`
resolves to, `pyvenv.cfg`, the site-packages files no RECORD lists (uv venv's own), and a sha256
of every file (`sunbeam-hashes.json`, read by deep verification and by healing only).
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sunbeam_sync.cache.files import PYCACHE, atomic_write, drop_write, seal_file

HASHES = "sunbeam-hashes.json"


def site_files(site: Path) -> Iterator[tuple[str, str]]:
    """(path relative to site-packages, absolute path) of every file, bytecode caches aside."""
    for rel, path, _link in walk_site(site).files:
        yield rel, path


def site_folders(site: Path) -> Iterator[tuple[str, str]]:
    """(path relative to site-packages, "" for itself; absolute path) of the folders `site_files` walks."""
    prefix = len(str(site)) + 1
    for path in walk_site(site).folders:
        yield path[prefix:], path


@dataclass
class SiteTree:
    """One walk of site-packages: what the build's baseline, sealing and index all need.

    Folders are listed top-down, as `os.walk` gives them; symlinked folders are not entered.
    """

    files: list[tuple[str, str, bool]] = field(default_factory=list)  # rel, path, is a symlink
    folders: list[str] = field(default_factory=list)  # every folder but __pycache__ ones
    bytecode: list[str] = field(default_factory=list)  # .pyc files and what __pycache__ holds
    pycaches: list[str] = field(default_factory=list)  # the __pycache__ folders there are
    without_pycache: list[str] = field(default_factory=list)  # folders of .py files, no cache


def walk_site(site: Path) -> SiteTree:
    """Walk `site` once with `scandir`: file types come with the listing, no `stat` per entry."""
    tree = SiteTree()
    prefix = len(str(site)) + 1
    stack = [str(site)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # as os.walk: a folder that cannot be listed is left out
        if os.path.basename(folder) == PYCACHE and folder != str(site):
            tree.pycaches.append(folder)
            tree.bytecode += [e.path for e in entries if not e.is_dir()]
            continue
        tree.folders.append(folder)
        rel_dir = folder[prefix:]
        has_py = has_cache = False
        subfolders = []
        for entry in entries:
            if entry.is_dir():
                if entry.name == PYCACHE:
                    has_cache = True
                if not entry.is_symlink():
                    subfolders.append(entry.path)
                continue
            name = entry.name
            if name.endswith(".pyc"):
                tree.bytecode.append(entry.path)
                continue
            has_py = has_py or name.endswith(".py")
            rel = f"{rel_dir}/{name}" if rel_dir else name
            tree.files.append((rel, entry.path, entry.is_symlink()))
        if has_py and not has_cache:
            tree.without_pycache.append(folder)
        stack += reversed(subfolders)  # top-down, in listing order
    return tree


def seal_site(tree: SiteTree, *, writable_pycache: bool) -> dict[str, int]:
    """Seal what `sealed_hashes` left of a walked site-packages: bytecode and the folders.

    With `writable_pycache`, every folder of .py files gets a writable `__pycache__` first (the
    background compiler fills and seals them). Returns each sealed folder's ctime, by path.
    """
    if writable_pycache:
        for folder in tree.without_pycache:
            os.mkdir(os.path.join(folder, PYCACHE))
    for path in tree.bytecode:
        drop_write(path)
    sealed = {folder: drop_write(folder) for folder in tree.folders}
    if not writable_pycache:
        sealed.update((folder, drop_write(folder)) for folder in tree.pycaches)
    return sealed


def interpreter_identity(env: Path) -> tuple[str, list[int]]:
    """Where `bin/python` leads, and that file's size and modification time."""
    target = os.path.realpath(env / "bin" / "python")
    st = os.stat(target)
    return target, [st.st_size, st.st_mtime_ns]


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


class InodeHashes:
    """sha256 per file identity (device, inode, size, mtime), shared by every build of a cache.

    Hardlinked envs share their files' inodes with uv's cache, so an env built from a warm cache
    hashes almost nothing new: what a sibling build hashed is looked up, not read again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.known: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.added = 0

    def sha256(self, path: str, st: os.stat_result | None = None) -> str:
        """The file's sha256; `st`, its `os.stat` if the caller has it."""
        st = st or os.stat(path)
        ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        digest = self.known.get(ident)
        if digest is None:
            digest = sha256(path)
            # Only files with other links (uv's cache, sibling envs) come back in another build;
            # an env's own files (its RECORDs, copies) would only grow the file for nothing.
            if st.st_nlink > 1:
                self.known[ident] = digest
                self.added += 1
        return digest

    def save(self) -> None:
        if self.added:
            atomic_write(self.path, json.dumps(self.known, separators=(",", ":")))


def sealed_hashes(
    files: Iterable[tuple[str, str, bool]],
    known: InodeHashes,
    stats: dict[str, os.stat_result],
) -> dict[str, str]:
    """The sha256 of each of `files` (`SiteTree.files`), dropping each one's write bits on the
    way. `stats`: the `stat` the RECORD check took of each file it names (the same answer as an
    `lstat` for a file that is not a symlink): only the rest are looked up here."""
    hashes = {}
    for rel, path, link in files:
        st = (None if link else stats.get(rel)) or os.lstat(path)
        seal_file(path, st)
        hashes[rel] = known.sha256(path, None if link else st)
    return hashes


def write_hashes(env: Path, hashes: dict[str, str]) -> None:
    (env / HASHES).write_text(json.dumps(hashes, separators=(",", ":"), sort_keys=True))


def read_hashes(env: Path) -> dict[str, str] | None:
    try:
        hashes: dict[str, str] = json.loads((env / HASHES).read_text())
        return hashes
    except (OSError, ValueError):
        return None


def differing(site: Path, hashes: dict[str, str], only: set[str] | None = None) -> list[str]:
    """Files of `hashes` (relative to site-packages) whose content is no longer what was built."""
    out = []
    for rel, digest in hashes.items():
        if only is not None and rel not in only:
            continue
        try:
            if sha256(str(site / rel)) != digest:
                out.append(rel)
        except OSError:
            out.append(rel)
    return out


def read_record(site: Path, dist_info: str) -> list[list[str]]:
    """Every row of `site/dist_info/RECORD` (OSError if there is none).

    A build reads each RECORD several times (manifest, overlaps, checks, index): it is parsed
    once per content, recognised by its file's identity (ctime: a write cannot set it back).
    """
    path = os.path.join(site, dist_info, "RECORD")
    st = os.stat(path)
    return _parsed_record(path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=2048)
def _parsed_record(path: str, *_identity: int) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def file_rows(rows: Iterable[list[str]]) -> Iterator[tuple[str, str, str]]:
    """(path, digest, size) of each row that names a file, bytecode aside (.pyc come and go)."""
    for row in rows:
        if len(row) < 3 or not row[0]:
            continue
        rel = row[0]
        if rel.endswith(".pyc") or "__pycache__" in rel:
            continue
        yield rel, row[1], row[2]
