"""`prepare`: any git ref → its checkout and a verified, leased environment for its lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.cache.linkmode import resolve_link_mode
from sunbeam_sync.cache.usage import record_use
from sunbeam_sync.envs.build import BuildRequest
from sunbeam_sync.envs.store import EnvOutcome, EnvStore, Outcome
from sunbeam_sync.errors import SunbeamSyncError
from sunbeam_sync.git.mirror import Mirror
from sunbeam_sync.git.sources import mirrored_sources
from sunbeam_sync.project.envkey import EnvKey, env_key
from sunbeam_sync.project.interpreter import Interpreter
from sunbeam_sync.project.interpreter_memo import remembered_interpreter
from sunbeam_sync.project.lockfile import read_project
from sunbeam_sync.request import PrepareRequest
from sunbeam_sync.result import EnvLease, PrepareResult
from sunbeam_sync.run.log import Logger, Redactor, SyncLog, Timings
from sunbeam_sync.settings import SyncSettings


def prepare(
    request: PrepareRequest,
    *,
    settings: SyncSettings | None = None,
    logger: Logger | None = None,
    cancel: threading.Event | None = None,
    building: Callable[[str, str], None] | None = None,
) -> EnvLease:
    """Fetch `request.ref`, check out its commit and return a verified env for its lock, leased.

    `building(commit, env_key)` is called before a build (never on a hit). An error raised
    after the ref resolved carries its commit (`SunbeamSyncError.commit`)."""
    settings = settings or SyncSettings()
    token = settings.git_token.get_secret_value() if settings.git_token else ""
    log = SyncLog(logger, Redactor([token]))
    layout = CacheLayout.open(settings.cache_dir)
    lease, timings = EnvLease(), Timings()
    wait = {"timeout": settings.lock_timeout, "log": log, "cancel": cancel}
    commit: str | None = None
    try:
        with timings("fetch"):
            mirror = Mirror(request.repo, layout, settings, log, cancel)
            commit = _resolve(mirror, request, log)
        with timings("checkout"):
            lease.hold(layout.checkout_lock(mirror.rid, commit).acquire(**wait))  # type: ignore[arg-type]
            where = f"{request.project_dir!r} at {request.ref} ({commit[:12]})"
            lock = read_project(mirror.checkout(commit), request.project_dir, where, layout)
            lock.require(request.required)
            if not settings.allow_external_sources:
                lock.check_sources()
            project = lock.project
        with timings("verify"):
            chosen = request.python or settings.python
            interpreter = remembered_interpreter(chosen, project, layout, lock.folder)
            key = env_key(lock.raw, interpreter, request.groups, request.extras, lock.package)
            _log_key(log, key, interpreter)
            use = lease.hold(layout.use_lock(key.key).acquire(**wait), env=True)  # type: ignore[arg-type]
            store = EnvStore(layout, settings, log, cancel)
            damage = store.check(key.key)
            if damage is None:  # a build checks the lock beside its install
                store.check_lock(project, interpreter.path, lock.check_inputs)
        with timings("build"):
            link_mode = resolve_link_mode(settings.link_mode, layout.envs)
            if damage is not None and building is not None:
                building(commit, key.key)
            sources = lock.git_sources if damage is not None else []  # a hit runs no uv sync
            build = BuildRequest(
                key, project, interpreter, link_mode, request.groups, request.extras,
                request.repo, commit, mirror.default_branch() if damage else None,
                lock.check_inputs,
                mirrored_sources(sources, request.repo, layout, settings, log, cancel),
            )  # fmt: skip
            outcome = store.ensure(build, damage, use)
        record_use(layout, key.key, repo=request.repo, ref=request.ref, commit=commit)
        env = layout.env(key.key)
        result = _result(build, env, outcome, timings.seconds, request.ref, lock.pythonpath)
        log.info("sync", f"ready: {_said[outcome.outcome]} | {timings}")
        return lease.ready(result)
    except BaseException as exc:
        lease.release()
        if isinstance(exc, SunbeamSyncError) and exc.commit is None:
            exc.commit = commit
        raise


def _result(
    build: BuildRequest,
    env: Path,
    outcome: EnvOutcome,
    timings: dict[str, float],
    ref: str,
    pythonpath: list[str],
) -> PrepareResult:
    return PrepareResult(
        repo=build.repo,
        ref=ref,
        commit=build.commit,
        checkout=str(build.project),
        env_key=build.key.key,
        env=str(env),
        python=str(env / "bin" / "python"),
        cache_hit=outcome.outcome is Outcome.HIT,
        built=outcome.outcome is not Outcome.HIT,
        healed=outcome.outcome is Outcome.HEALED,
        heal_reason=outcome.reason,
        link_mode=build.link_mode.value,
        pythonpath=pythonpath,
        timings=timings,
    )


_said = {Outcome.HIT: "cache hit", Outcome.BUILT: "built", Outcome.HEALED: "healed"}


def _resolve(mirror: Mirror, request: PrepareRequest, log: SyncLog) -> str:
    ref = request.ref
    if request.commit is None:
        commit, fetched = mirror.resolve_or_fetch(ref)
        log.info(
            "git", f"{ref} is commit {commit}" + ("" if fetched else " (already in the mirror)")
        )
        return commit
    commit, head = mirror.resolve_pinned(ref, request.commit)
    now = "points there too" if head == commit else f"is now at {head}" if head else "is gone"
    log.info("git", f"running {ref} at commit {commit}, as asked (a rerun); {ref} {now}")
    return commit


def _log_key(log: SyncLog, key: EnvKey, interpreter: Interpreter) -> None:
    log.info(
        "env",
        f"key {key.key[:16]} (uv.lock sha256 {key.inputs['lock_sha256'][:12]}, "
        f"{interpreter.label} {interpreter.platform}, groups {key.inputs['groups'] or '-'}, "
        f"extras {key.inputs['extras'] or '-'}"
        + (f", workspace member {key.inputs['package']})" if "package" in key.inputs else ")"),
    )
