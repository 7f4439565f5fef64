"""The hit path's index of an environment: what the full check would read, recorded at the build.

The full check (`verify.check_records` + `verify.stray_files`) parses every RECORD and walks
every folder of site-packages on every use: 0.3 s for 9,000 files. The index, written as the last
step of a build (after the files and folders lost their write bits), holds what those checks
derive, so a hit needs one `stat` per file and per folder and no CSV parsing:

- per distribution, its RECORD's (size, mtime_ns) and, for each file it lists, the path, the
  size RECORD gives and the (mtime_ns, inode) the file had when the build ended: a RECORD that is
  no longer the one of the build sends the check back to the full one, which reports the edit
  exactly as before. The file's identity comes with the `stat` the size check makes anyway: a
  write moves the mtime (in every hardlink of the inode, uv's cache and sibling envs included),
  a file renamed or copied over it is another inode. Nothing legitimate moves either once the
  build is done: the background compile only writes `.pyc` files, sealing and hardlinking
  change ctime alone, and a rebuild is a new folder with its own index;
- per folder of site-packages, its ctime: a file added, removed or renamed changes its folder's
  ctime, and unlike mtime a ctime cannot be set back (`touch -d`, `os.utime` update it too).
  Only folders whose ctime changed are listed, and their entries compared with the build's;
- the ctime of `bin/`: with it, `pyvenv.cfg` and the interpreter's identity unchanged, the prefix
  the env's interpreter reported right after the build still holds, so no interpreter is started.

Every question the index cannot answer falls back to the full check (`None` from `check`).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sunbeam_sync.cache.files import PYCACHE
from sunbeam_sync.envs.baseline import file_rows, read_record, site_files, site_folders
from sunbeam_sync.envs.manifest import Manifest

INDEX = "sunbeam-index.json"
_VERSION = 2  # 2: files carry (mtime_ns, inode); 1 (sizes only) is still read, see `read_index`
NO_SIZE = -1  # a RECORD row without a size: the file only has to exist
UNKNOWN = -1  # a file's mtime and inode in an index of format 1: only its size is checked

FileRow = list[Any]  # [site-relative path, size or NO_SIZE, mtime_ns, inode]


@dataclass
class IndexedCheck:
    files: int = 0
    problems: list[str] = field(default_factory=list)
    modified: set[str] = field(default_factory=set)
    stray: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # site-relative files that changed


@dataclass(frozen=True)
class EnvIndex:
    bin_ctime: int
    folders: dict[str, int]  # site-relative folder ("" = site-packages) → ctime_ns
    records: dict[str, list[int]]  # dist-info folder → its RECORD's [size, mtime_ns]
    files: dict[str, list[FileRow]]  # dist-info folder → its files' rows, as RECORD lists them

    def prefix_holds(self, env: Path) -> bool:
        """The build's prefix check still stands (callers have compared pyvenv.cfg and bin/python)."""
        try:
            return os.lstat(env / "bin").st_ctime_ns == self.bin_ctime
        except OSError:
            return False

    def check(self, env: Path, manifest: Manifest) -> IndexedCheck | None:
        """What the full check would find, by stat alone; None when only the full check can tell."""
        site = str(env / manifest.site_packages)
        try:
            changed = self._changed_folders(site)
        except OSError:
            return None  # no site-packages: the full check says so
        out = IndexedCheck()
        if "" in changed:
            expected = {d.dist_info for d in manifest.distributions}
            try:
                present = {p for p in os.listdir(site) if p.endswith(".dist-info")}
            except OSError:
                return None
            out.problems += [
                f"{extra} was installed after the build" for extra in sorted(present - expected)
            ]
        try:
            for dist in manifest.distributions:
                if not self._check_dist(
                    site + os.sep, dist.name, dist.version, dist.dist_info, out
                ):
                    return None
        except (ValueError, TypeError):
            return None  # rows not of the shape this version writes (a damaged index): in full
        if changed:
            out.stray = self._stray(site, changed, manifest.unowned)
        return out

    def _changed_folders(self, site: str) -> list[str]:
        os.lstat(site)
        changed = []
        prefix = site + os.sep
        for rel, ctime in self.folders.items():
            try:
                now = os.lstat(prefix + rel if rel else site).st_ctime_ns
            except OSError:
                continue  # gone: its files are reported missing
            if now != ctime:
                changed.append(rel)
        return changed

    def _check_dist(
        self, prefix: str, name: str, version: str, dist_info: str, out: IndexedCheck
    ) -> bool:
        if dist_info not in self.records:
            return False
        try:
            st = os.stat(prefix + dist_info + "/RECORD")
        except OSError:
            out.problems.append(f"{name} {version} is missing (no RECORD)")
            return True
        if [st.st_size, st.st_mtime_ns] != self.records[dist_info]:
            return False  # edited since the build: the full check reports how
        rows = self.files[dist_info]
        out.files += len(rows)
        stat_ = os.stat  # this loop runs for every installed file on every run: no lookups
        for rel, size, mtime, ino in rows:
            # Plain concatenation, for the same reason.
            path = prefix + rel if not rel.startswith("..") else os.path.normpath(prefix + rel)
            try:
                st = stat_(path)
            except OSError:
                out.problems.append(f"{rel} of {name} is missing")
                continue
            if (
                st.st_mtime_ns == mtime
                and st.st_ino == ino
                and (st.st_size == size or size == NO_SIZE)
            ):
                continue  # as built, the common case: decided here, without a call
            found = file_problem(rel, name, st, size, mtime, ino)
            if found is not None:
                out.problems.append(found[0])
                out.modified.add(name)
                if found[1]:
                    out.changed.add(rel)
        return True

    def identities(self) -> dict[str, tuple[int, int]]:
        """Site-relative path → (mtime_ns, inode) at the build, for the full check."""
        try:
            return {
                rel: (mtime, ino)
                for rows in self.files.values()
                for rel, _size, mtime, ino in rows
                if ino != UNKNOWN
            }
        except (ValueError, TypeError):
            return {}  # a damaged index vouches for nothing; the full check's sizes still hold

    def _stray(self, site: str, changed: list[str], unowned: dict[str, int]) -> list[str]:
        """Files in the changed folders (and in folders new since the build) nothing accounts for."""
        known = set(unowned)
        known.update(rel for rows in self.files.values() for rel, *_rest in rows)
        stray = []
        for folder in changed:
            base = os.path.join(site, folder) if folder else site
            try:
                entries = list(os.scandir(base))
            except OSError:
                continue
            for entry in entries:
                rel = f"{folder}/{entry.name}" if folder else entry.name
                if not entry.is_dir():
                    if not entry.name.endswith(".pyc") and rel not in known:
                        stray.append(rel)
                # Like os.walk in the full check: symlinked folders are not followed.
                elif entry.name != PYCACHE and rel not in self.folders and not entry.is_symlink():
                    stray += [
                        f"{rel}/{sub}" for sub, _path in site_files(Path(entry.path))
                        if f"{rel}/{sub}" not in known
                    ]  # fmt: skip
        return stray


def file_problem(
    rel: str, name: str, st: os.stat_result, size: int, mtime: int, ino: int
) -> tuple[str, bool] | None:
    """How an installed file differs from the build, given its `stat`; None if it does not.

    With the message, whether uv's cache may hold the change (healing looks for it there):
    not for a file renamed or copied over the built one, a new inode no cache entry links (the
    cache's copy is the original; a rebuild must still match the build's hashes). A cache folder
    copied elsewhere is all new inodes: its envs rebuild from the copied uv cache as it is.
    Shared by the index and the full check, so both say the same thing in the same words.
    """
    if size != NO_SIZE and st.st_size != size:
        return f"{rel} of {name} changed size ({st.st_size} != {size})", True
    if st.st_ino != ino and ino != UNKNOWN:
        return f"{rel} of {name} was replaced since the build (another file, same size)", False
    if st.st_mtime_ns != mtime and mtime != UNKNOWN:
        said = f"{rel} of {name} was modified in place since the build (same size, new mtime)"
        return said, True
    return None


def write_index(
    env: Path,
    manifest: Manifest,
    sealed: dict[str, int] | None = None,
    rows: dict[str, list[FileRow]] | None = None,
) -> None:
    """Record the index of a finished env; the last write of a build (after it was sealed)."""
    _write_sealed(
        env / INDEX, json.dumps(index_data(env, manifest, sealed, rows), separators=(",", ":"))
    )


def index_data(
    env: Path,
    manifest: Manifest,
    sealed: dict[str, int] | None = None,
    rows: dict[str, list[FileRow]] | None = None,
) -> dict[str, Any]:
    """What the index of `env` holds, as it is now.

    `sealed`: the folders' ctimes as the seal left them (else they are looked up); `rows`: each
    distribution's rows as the build's RECORD check made them (`check_records(keep=True)`:
    sealing changes no file's mtime or inode), else read and looked up here.
    """
    site = env / manifest.site_packages
    records: dict[str, list[int]] = {}
    files: dict[str, list[FileRow]] = {}
    kept = manifest.overlaps
    prefix = str(site) + os.sep
    for dist in manifest.distributions:
        st = os.stat(site / dist.dist_info / "RECORD")
        records[dist.dist_info] = [st.st_size, st.st_mtime_ns]
        mine = dist.dist_info
        if rows is not None and mine in rows:
            files[mine] = rows[mine]
            continue
        files[mine] = [
            file_row(rel, size, *_identity(prefix, rel))
            for rel, _d, size in file_rows(read_record(site, dist.dist_info))
            if kept.get(rel, mine) == mine  # as the full check: the copy uv kept, if several
        ]
    return {
        "version": _VERSION,
        "bin_ctime": os.lstat(env / "bin").st_ctime_ns,
        "folders": _sealed_folders(str(site), sealed) if sealed else _folders(site),
        "records": records,
        "files": files,
    }


def file_row(rel: str, size: str, mtime: int, ino: int) -> FileRow:
    """One file's row in the index, from its RECORD row's size and its `stat`."""
    return [rel, int(size) if size else NO_SIZE, mtime, ino]


def _identity(prefix: str, rel: str) -> tuple[int, int]:
    path = prefix + rel if not rel.startswith("..") else os.path.normpath(prefix + rel)
    try:
        st = os.stat(path)
    except OSError:
        return UNKNOWN, UNKNOWN  # the build's own check found every file: not reached
    return st.st_mtime_ns, st.st_ino


def _folders(site: Path) -> dict[str, int]:
    return {rel: os.lstat(path).st_ctime_ns for rel, path in site_folders(site)}


def _sealed_folders(site: str, sealed: dict[str, int]) -> dict[str, int]:
    """`_folders` from what make_read_only saw: the same folders (no __pycache__), no walk."""
    inside = site + os.sep
    found = {"": sealed[site]} if site in sealed else {}
    for path, ctime in sealed.items():
        if path.startswith(inside) and PYCACHE not in path[len(inside) :].split(os.sep):
            found[path[len(inside) :]] = ctime
    return found


def read_index(env: Path) -> EnvIndex | None:
    """The env's index, or None (an env built before indexes existed, or a damaged file).

    An index of format 1 (written before files carried their identity) still answers, with
    sizes only: its env is as well checked as when it was built, and fully once rebuilt.
    """
    try:
        data = json.loads((env / INDEX).read_text())
        version = data.get("version")
        if version not in (1, _VERSION):
            return None
        files = dict(data["files"])
        if version == 1:
            files = {
                d: [[rel, size, UNKNOWN, UNKNOWN] for rel, size in rows]
                for d, rows in files.items()
            }
        return EnvIndex(
            bin_ctime=int(data["bin_ctime"]),
            folders=dict(data["folders"]),
            records=dict(data["records"]),
            files=files,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_sealed(path: Path, text: str) -> None:
    # The env's own folder is read-only by now: open it for this one file, then close it again.
    # (Its ctime is not in the index; only site-packages' folders and bin/ are.)
    folder = path.parent
    mode = stat.S_IMODE(os.lstat(folder).st_mode)
    os.chmod(folder, mode | stat.S_IWUSR)
    try:
        path.write_text(text)
        path.chmod(0o444)
    finally:
        os.chmod(folder, mode)
