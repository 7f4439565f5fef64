"""One bare mirror per repository, fetched incrementally; one immutable checkout per commit."""

from __future__ import annotations

import os
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import git

from sunbeam_sync import proc
from sunbeam_sync.credentials import git_environment
from sunbeam_sync.errors import GitError, NetworkError, UnknownRefError
from sunbeam_sync.fsutil import make_read_only, remove_tree
from sunbeam_sync.layout import CacheLayout, repo_id
from sunbeam_sync.logs import SyncLog
from sunbeam_sync.refs import FULL_SHA, HEX_SHA
from sunbeam_sync.settings import SyncSettings

CHECKOUT_MARKER = ".sunbeam-commit"
_TRANSIENT = (
    "could not resolve host",
    "connection refused",
    "connection reset",
    "connection timed out",
    "operation timed out",
    "timed out",
    "early eof",
    "the remote end hung up",
    "couldn't connect",
    "failed to connect",
    "temporary failure",
    "http 5",
    "error: 5",
    "502",
    "503",
    "504",
    "rpc failed",
)
_AUTH = ("authentication failed", "could not read username", "could not read password", "403")
_MISSING = ("not found", "does not appear to be a git repository", "does not exist", "no such")


class Mirror:
    def __init__(
        self,
        repo: str,
        layout: CacheLayout,
        settings: SyncSettings,
        log: SyncLog,
        cancel: threading.Event | None = None,
    ) -> None:
        self.repo = repo
        self.rid = repo_id(repo)
        self.path = layout.mirror(self.rid)
        self.layout = layout
        self.settings = settings
        self.log = log
        self.cancel = cancel
        self.env = git_environment(settings, layout.git)

    # ------------------------------------------------------------------ mirror
    def _open(self) -> git.Repo | None:
        if (self.path / "HEAD").exists():
            return git.Repo(self.path)
        return None

    def ensure(self) -> git.Repo:
        repo = self._open()
        if repo is not None:
            return repo
        with self.layout.mirror_lock(self.rid).acquire(
            timeout=self.settings.lock_timeout, log=self.log, cancel=self.cancel
        ):
            repo = self._open()
            if repo is not None:
                return repo
            tmp = self.layout.temp_sibling(self.path)
            repo = git.Repo.init(tmp, bare=True, mkdir=True)
            with repo.config_writer() as cfg:
                cfg.set_value('remote "origin"', "url", self.repo)
                cfg.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/heads/*")
                cfg.add_value('remote "origin"', "fetch", "+refs/tags/*:refs/tags/*")
                cfg.set_value("gc", "auto", "0")  # no surprise repacks while a run waits
            os.rename(tmp, self.path)
            self.log.info("git", f"created mirror {self.path.name} of {self.repo}")
            return git.Repo(self.path)

    def fetch(self) -> None:
        """Fetch heads and tags, retrying transient failures with backoff."""
        self.ensure()
        attempts = max(1, self.settings.git_retries)
        asked = time.time()
        with self.layout.mirror_lock(self.rid).acquire(
            timeout=self.settings.lock_timeout, log=self.log, cancel=self.cancel
        ):
            if self._fetched_since(asked):
                # Another run fetched while we waited for the lock: its refs are as fresh as ours.
                self.log.info("git", "fetched by a concurrent run moments ago; not fetching again")
                return
            for attempt in range(1, attempts + 1):
                result = proc.run(
                    ["git", "-C", str(self.path), "fetch", "--prune", "--no-auto-gc", "origin"],
                    log=self.log,
                    tag="git",
                    env=self.env,
                    cancel=self.cancel,
                )
                if result.returncode == 0:
                    self._fetch_marker.touch()
                    return
                out = result.output.lower()
                if any(s in out for s in _AUTH):
                    raise GitError(
                        f"git could not authenticate to {self.repo}: set SUNBEAM_GIT_TOKEN to a "
                        "token with read access"
                    )
                transient = any(s in out for s in _TRANSIENT)
                if not transient:
                    if any(s in out for s in _MISSING):
                        raise GitError(
                            f"repository {self.repo} was not found or is not a git repository: "
                            "check the URL and that the token can read it"
                        )
                    raise GitError(f"git fetch from {self.repo} failed: {_last(result.lines)}")
                if attempt < attempts:
                    delay = self.settings.retry_backoff * 2 ** (attempt - 1)
                    self.log.warning(
                        "git", f"fetch failed ({_last(result.lines)}); retry {attempt} in {delay}s"
                    )
                    _sleep(delay, self.cancel)
            raise NetworkError(
                f"could not reach {self.repo} after {attempts} attempts: {_last(result.lines)}"
            )

    def _fetch_commit(self, sha: str) -> str | None:
        result = proc.run(
            ["git", "-C", str(self.path), "fetch", "--no-auto-gc", "origin", sha],
            log=self.log,
            tag="git",
            env=self.env,
            cancel=self.cancel,
            quiet=True,
        )
        return sha if result.returncode == 0 and self.has_commit(sha) else None

    @property
    def _fetch_marker(self) -> Path:
        return self.path / "sunbeam-fetched"

    def _fetched_since(self, when: float) -> bool:
        try:
            return self._fetch_marker.stat().st_mtime >= when
        except OSError:
            return False

    def has_commit(self, sha: str) -> bool:
        repo = self._open()
        if repo is None:
            return False
        try:
            repo.git.cat_file("-e", f"{sha}^{{commit}}")
            return True
        except git.GitCommandError:
            return False

    def resolve(self, ref: str) -> str | None:
        """Full commit SHA for a branch, tag or (abbreviated) SHA; None if the mirror lacks it."""
        repo = self._open()
        if repo is None:
            return None
        names = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        for name in names:
            sha = _rev_parse(repo, f"{name}^{{commit}}")
            if sha:
                return sha
        if HEX_SHA.match(ref):
            sha = _rev_parse(repo, f"{ref}^{{commit}}")
            if sha is None and len(ref) < 40 and _is_ambiguous(repo, ref):
                raise UnknownRefError(
                    f"short SHA {ref!r} is ambiguous in {self.repo}: give more hex digits"
                )
            return sha
        return None

    def resolve_or_fetch(self, ref: str) -> tuple[str, bool]:
        """Resolve `ref`, fetching first unless it is a full SHA the mirror already has.

        Returns (commit, fetched). A known full SHA works with the remote unreachable.
        """
        if FULL_SHA.match(ref) and self.has_commit(ref):
            return ref, False
        try:
            self.fetch()
        except NetworkError:
            sha = self.resolve(ref) if HEX_SHA.match(ref) else None
            if sha is None:
                raise
            self.log.warning("git", f"remote unreachable; commit {sha} is in the mirror, using it")
            return sha, False
        sha = self.resolve(ref)
        if sha is None and FULL_SHA.match(ref):
            sha = self._fetch_commit(ref)  # e.g. a pull request's commit, on no branch or tag
        if sha is None:
            raise UnknownRefError(
                f"ref {ref!r} not found in {self.repo}: no branch, tag or commit by that name"
            )
        return sha, True

    # --------------------------------------------------------------- checkout
    def checkout(self, commit: str) -> Path:
        """The commit's files in a folder shared by every ref pointing there; files read-only."""
        final = self.layout.checkout(self.rid, commit)
        if (final / CHECKOUT_MARKER).is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # no marker: cannot come from us (we rename complete folders only)
            remove_tree(final)
        tmp = self.layout.temp_sibling(final)
        tmp.mkdir()
        try:
            repo = self.ensure()
            with tempfile.TemporaryFile(dir=final.parent) as archive:
                repo.archive(archive, commit, format="tar")
                archive.seek(0)
                # An empty tree archives to a header tarfile cannot read: nothing to extract.
                if repo.git.ls_tree(commit):
                    with tarfile.open(fileobj=archive) as tar:
                        _extract(tar, tmp)
            (tmp / CHECKOUT_MARKER).write_text(commit + "\n")
            make_read_only(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / CHECKOUT_MARKER).is_file():
                    raise
        except git.GitCommandError as exc:
            raise GitError(f"could not read commit {commit} from the mirror: {exc.stderr}") from exc
        finally:
            if tmp.exists():
                remove_tree(tmp)
        return final


def _rev_parse(repo: git.Repo, spec: str) -> str | None:
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", "--end-of-options", spec)).strip()
    except git.GitCommandError:
        return None


def _is_ambiguous(repo: git.Repo, prefix: str) -> bool:
    try:
        repo.git.rev_parse("--disambiguate=" + prefix)
    except git.GitCommandError:
        return False
    out = repo.git.rev_parse("--disambiguate=" + prefix).split()
    return len(out) > 1


def _last(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return "no output"


def _sleep(seconds: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        time.sleep(seconds)
    else:
        cancel.wait(seconds)


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    # Pythons before 3.11.4 (Debian 12 ships 3.11.2) have no extraction filters: refuse what the
    # "data" filter would, by hand. git archive only emits files, folders and symlinks.
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts:
            raise GitError(f"refusing archive member outside the checkout: {member.name}")
        if not (member.isfile() or member.isdir() or member.issym()):
            raise GitError(f"refusing special archive member: {member.name}")
        if member.issym():
            target = os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname))
            if member.linkname.startswith("/") or target.split(os.sep)[0] == "..":
                raise GitError(f"refusing symlink leaving the checkout: {member.name}")
    tar.extractall(dest)
