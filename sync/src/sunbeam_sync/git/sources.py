"""The lock's git sources on the pipeline repository's host, read by uv from our own mirrors.

A team whose pipeline repository is private usually keeps the packages it locks from git
(`shared-lib @ git+https://host/team/shared-lib`) private on the same host. uv fetches those
itself, with no credentials, and fails. Handing uv the token would hand it to every build
backend uv runs (sdists and git packages run their own code during the build, with uv's
environment). Instead each such repository is fetched here, by the same `Mirror` that fetches
the pipeline with `SUNBEAM_GIT_TOKEN`, and uv's git is told to read that URL from the mirror
(`url.<mirror>.insteadOf`, passed as GIT_CONFIG_* variables): the token never leaves our git
process, and a second build of the same commit needs no network.

Sources on any other host, or any source when no token is set, are left to uv as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.errors import GitError, UnknownRefError
from sunbeam_sync.git.mirror import Mirror
from sunbeam_sync.project.lockfile import GitSource
from sunbeam_sync.run.credentials import url_origin
from sunbeam_sync.run.log import SyncLog
from sunbeam_sync.settings import SyncSettings


def mirrored_sources(
    sources: Sequence[GitSource],
    repo: str,
    layout: CacheLayout,
    settings: SyncSettings,
    log: SyncLog,
    cancel: threading.Event | None,
) -> dict[str, str]:
    """GIT_CONFIG_* variables sending uv's git to our mirror for each source on `repo`'s host."""
    host = url_origin(repo)
    if settings.git_token is None or host is None:
        return {}
    rewrites: dict[str, str] = {}
    for source in sources:
        if url_origin(source.url) != host or source.url in rewrites:
            continue
        mirror = Mirror(source.url, layout, settings, log, cancel)
        try:
            mirror.resolve_or_fetch(source.commit)  # fetches unless the mirror has that commit
        except UnknownRefError:
            raise source.missing() from None
        except GitError as exc:
            raise GitError(f"git source {source.name}: {exc}") from None
        rewrites[source.url] = mirror.path.as_uri()
        log.info("git", f"{source.name}: uv reads {source.url} from mirror {mirror.path.name}")
    return git_config(rewrites)


def git_config(rewrites: dict[str, str]) -> dict[str, str]:
    """`url.<local>.insteadOf <url>` for each rewrite, after the caller's own GIT_CONFIG_* ones."""
    if not rewrites:
        return {}
    try:
        start = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        start = 0
    env: dict[str, str] = {}
    for n, (url, local) in enumerate(rewrites.items(), start):
        env[f"GIT_CONFIG_KEY_{n}"] = f"url.{local}.insteadOf"
        env[f"GIT_CONFIG_VALUE_{n}"] = url
    env["GIT_CONFIG_COUNT"] = str(start + len(rewrites))
    return env
