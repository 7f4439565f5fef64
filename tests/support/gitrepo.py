"""Real git repositories for tests: a working clone that pushes to a bare `file://` remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

_ENV_ID = ["-c", "user.name=Sunbeam Test", "-c", "user.email=test@sunbeam.invalid"]


class PipelineRepo:
    """A working tree whose commits are pushed to `remote` (a bare repo)."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.remote = root / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.remote)], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.work)], check=True)
        self.git("remote", "add", "origin", str(self.remote))

    @property
    def url(self) -> str:
        return self.remote.as_uri()

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *_ENV_ID, "-C", str(self.work), *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def write(self, rel: str, text: str) -> None:
        path = self.work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str, branch: str = "main") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        self.git("push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")
        return self.git("rev-parse", "HEAD")

    def rewrite_history(self) -> None:
        """Force-push a new history and prune the old one: its commits are gone for good."""
        self.git("checkout", "-q", "--orphan", "rewritten")
        self.write("README", "history rewritten\n")
        self.commit("rewritten", branch="main")
        for args in (["reflog", "expire", "--expire=now", "--all"], ["gc", "-q", "--prune=now"]):
            subprocess.run(["git", "--git-dir", str(self.remote), *args], check=True)

    def checkout(self, branch: str, create: bool = False) -> None:
        if create:
            self.git("checkout", "-q", "-b", branch)
        else:
            self.git("checkout", "-q", branch)

    def tag(self, name: str) -> None:
        self.git("tag", "-f", name)
        self.git("push", "-q", "-f", "origin", f"refs/tags/{name}")
