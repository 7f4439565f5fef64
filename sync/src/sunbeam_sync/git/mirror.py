"""One bare mirror per repository, fetched incrementally; one immutable checkout per commit."""

from __future__ import annotations

import os
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from sunbeam_sync.cache.files import atomic_directory, make_read_only, remove_tree
from sunbeam_sync.cache.layout import CacheLayout, repo_id
from sunbeam_sync.errors import GitError, NetworkError, UnknownRefError
from sunbeam_sync.git.refs import FULL_SHA, HEX_SHA
from sunbeam_sync.git.runner import GitRunner, askpass_script
from sunbeam_sync.run import proc
from sunbeam_sync.run.credentials import git_environment
from sunbeam_sync.run.log import SyncLog
from sunbeam_sync.run.retry import corruption, is_transient, refused_credentials, retry
from sunbeam_sync.settings import SyncSettings

CHECKOUT_MARKER = ".sunbeam-commit"
_MISSING = ("not found", "does not appear to be a git repository", "does not exist", "no such")
_CONFIG = (
    ("gc.auto", "0"),  # no surprise repacks while a run waits
    ("remote.origin.fetch", "+refs/heads/*:refs/heads/*"),
    ("remote.origin.fetch", "+refs/tags/*:refs/tags/*"),
)


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
        askpass = askpass_script(layout.git) if settings.git_token is not None else None
        self.git = GitRunner(layout.git, git_environment(settings, askpass), log, cancel)

    def _git(self, *args: str, quiet: bool = True) -> proc.ProcResult:
        return self.git.run(f"--git-dir={self.path}", *args, quiet=quiet)

    # ------------------------------------------------------------------ mirror
    def _exists(self) -> bool:
        return (self.path / "HEAD").exists()

    def ensure(self) -> None:
        if self._exists():
            return
        with self.layout.mirror_lock(self.rid).acquire(
            timeout=self.settings.lock_timeout, log=self.log, cancel=self.cancel
        ):
            if self._exists():
                return
            with atomic_directory(self.path) as tmp:
                self._must(self.git.run("init", "--quiet", "--bare", str(tmp), quiet=True))
                config = (("remote.origin.url", self.repo), *_CONFIG)
                for name, value in config:
                    self._must(self.git.run(f"--git-dir={tmp}", "config", "--add", name, value))
            self.log.info("git", f"created mirror {self.path.name} of {self.repo}")

    def _must(self, result: proc.ProcResult) -> None:
        if result.returncode != 0:
            raise GitError(f"could not create the mirror of {self.repo}: {_last(result.lines)}")

    def fetch(self) -> None:
        """Fetch heads and tags, retrying transient failures with backoff."""
        self.ensure()
        asked = time.time()
        with self.layout.mirror_lock(self.rid).acquire(
            timeout=self.settings.lock_timeout, log=self.log, cancel=self.cancel
        ):
            if self._fetched_since(asked):
                # Another run fetched while we waited for the lock: its refs are as fresh as ours.
                self.log.info("git", "fetched by a concurrent run moments ago; not fetching again")
                return
            result = retry(
                lambda: self._git("fetch", "--prune", "--no-auto-gc", "origin", quiet=False),
                again=_transient,
                attempts=self.settings.git_retries,
                backoff=self.settings.retry_backoff,
                cancel=self.cancel,
                on_retry=lambda r, n, delay: self.log.warning(
                    "git", f"fetch failed ({_last(r.lines)}); retry {n} in {delay}s"
                ),
            )
            if result.returncode != 0:
                raise self._fetch_error(result)
            self._fetch_marker.touch()

    def _fetch_error(self, result: proc.ProcResult) -> Exception:
        out = result.output.lower()
        if refused_credentials(out):
            return GitError(
                f"git could not authenticate to {self.repo}: set SUNBEAM_GIT_TOKEN to a "
                "token with read access"
            )
        if corrupt := corruption(result.lines):
            return GitError(
                f"repository {self.repo} is corrupt on its server ({corrupt}): repair it there "
                "(`git fsck`), or point the deployment at a healthy copy"
            )
        if is_transient(out):
            return NetworkError(
                f"could not reach {self.repo} after {max(1, self.settings.git_retries)} "
                f"attempts: {_last(result.lines)}"
            )
        if any(s in out for s in _MISSING):
            return GitError(
                f"repository {self.repo} was not found or is not a git repository: "
                "check the URL and that the token can read it"
            )
        return GitError(f"git fetch from {self.repo} failed: {_last(result.lines)}")

    def _fetch_commit(self, sha: str) -> str | None:
        result = self._git("fetch", "--no-auto-gc", "origin", sha)
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
        return self._exists() and self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def _rev_parse(self, spec: str) -> str | None:
        result = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", spec)
        return result.output.strip() or None if result.returncode == 0 else None

    def resolve(self, ref: str) -> str | None:
        """Full commit SHA for a branch, tag or (abbreviated) SHA; None if the mirror lacks it."""
        if not self._exists():
            return None
        names = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        for name in names:
            sha = self._rev_parse(f"{name}^{{commit}}")
            if sha:
                return sha
        if HEX_SHA.match(ref):
            sha = self._rev_parse(f"{ref}^{{commit}}")
            if sha is None and len(ref) < 40 and self._is_ambiguous(ref):
                raise UnknownRefError(
                    f"short SHA {ref!r} is ambiguous in {self.repo}: give more hex digits"
                )
            return sha
        return None

    def _is_ambiguous(self, prefix: str) -> bool:
        result = self._git("rev-parse", "--disambiguate=" + prefix)
        return result.returncode == 0 and len(result.output.split()) > 1

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

    def resolve_pinned(self, ref: str, commit: str) -> tuple[str, str | None]:
        """A rerun's commit (full SHA) and where `ref` points now (None: gone); one fetch."""
        try:
            self.fetch()
        except NetworkError:
            self.log.warning("git", "remote unreachable; using the mirror as last fetched")
        sha = self.resolve(commit)
        if sha is None and FULL_SHA.match(commit):
            sha = self._fetch_commit(commit)
        if sha is None:
            raise UnknownRefError(
                f"commit {commit} not found in {self.repo}: it may have been force-pushed "
                f"away; run {ref}'s latest commit instead"
            )
        return sha, self.resolve(ref)

    def default_branch(self) -> str | None:
        """The remote's default branch (what its HEAD names); else `main` or `master` when the
        mirror has one; None when neither is known."""
        listed = self._git("ls-remote", "--symref", "origin", "HEAD")
        for line in listed.lines if listed.returncode == 0 else []:
            target, _, name = line.partition("\t")
            if name.strip() == "HEAD" and target.startswith("ref: refs/heads/"):
                return target.removeprefix("ref: refs/heads/").strip()
        return next((b for b in ("main", "master") if self.resolve(b)), None)

    # --------------------------------------------------------------- checkout
    def checkout(self, commit: str) -> Path:
        """The commit's files in a folder shared by every ref pointing there; files read-only."""
        final = self.layout.checkout(self.rid, commit)
        if (final / CHECKOUT_MARKER).is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # no marker: cannot come from us (we rename complete folders only)
            remove_tree(final)
        self.ensure()
        with atomic_directory(
            final, keep_theirs=lambda: (final / CHECKOUT_MARKER).is_file()
        ) as tmp:
            self._extract_commit(commit, tmp)
            (tmp / CHECKOUT_MARKER).write_text(commit + "\n")
            make_read_only(tmp, folders=False)
        return final

    def _extract_commit(self, commit: str, dest: Path) -> None:
        with tempfile.TemporaryFile(dir=dest.parent) as archive:
            result = self.git.run(
                f"--git-dir={self.path}",
                "archive",
                "--format=tar",
                commit,
                quiet=True,
                sink=archive,
            )
            if result.returncode != 0:
                raise GitError(
                    f"could not read commit {commit} from the mirror: {_last(result.lines)}"
                )
            archive.seek(0)
            try:
                with tarfile.open(fileobj=archive, mode="r:") as tar:
                    outward = _extract(tar, dest)
            except tarfile.ReadError:
                # An empty tree archives to a header tarfile cannot read: nothing to extract.
                if self._git("ls-tree", commit).output.strip():
                    raise
                outward = []
            if outward:
                shown = ", ".join(outward[:5]) + (" ..." if len(outward) > 5 else "")
                self.log.warning(
                    "git",
                    f"kept {len(outward)} symlinks leading out of the checkout, never "
                    f"followed by the sync: {shown}",
                )


def _transient(result: proc.ProcResult) -> bool:
    out = result.output.lower()
    return result.returncode != 0 and not refused_credentials(out) and is_transient(out)


def _last(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return "no output"


def _extract(tar: tarfile.TarFile, dest: Path) -> list[str]:
    """Extract a `git archive`; return the symlinks kept as links that lead out of the checkout.

    A link to an absolute path or out of the tree is created as it is, after everything else, so
    that no member is ever written through it; nothing of ours follows it (`lockfile` refuses a
    project file that resolves outside). Other members are refused as tarfile's "data" filter does.
    """
    members: list[tarfile.TarInfo] = []
    outward: list[tarfile.TarInfo] = []
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts:
            raise GitError(f"refusing archive member outside the checkout: {member.name}")
        if not (member.isfile() or member.isdir() or member.issym()):
            raise GitError(f"refusing special archive member: {member.name}")
        (outward if member.issym() and _leads_out(member) else members).append(member)
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter="data")
    else:  # Pythons before 3.11.4 (Debian 12 ships 3.11.2): checked by hand above
        tar.extractall(dest, members=members)
    for link in outward:
        path = dest / link.name
        if not path.parent.resolve().is_relative_to(dest.resolve()):
            raise GitError(f"refusing symlink inside a symlinked folder: {link.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link.linkname, path)
    return [link.name for link in outward]


def _leads_out(link: tarfile.TarInfo) -> bool:
    target = os.path.normpath(os.path.join(os.path.dirname(link.name), link.linkname))
    return link.linkname.startswith("/") or target == ".." or target.startswith("../")
