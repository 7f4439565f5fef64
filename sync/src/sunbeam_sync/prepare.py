"""`prepare`: any git ref → its checkout and a verified, leased environment for its lock."""

from __future__ import annotations

import re
import threading
import time
import tomllib
from pathlib import Path, PurePosixPath
from types import TracebackType

from pydantic import BaseModel, Field

from sunbeam_sync.build import Builder, BuildRequest, compile_in_background
from sunbeam_sync.envkey import env_key
from sunbeam_sync.errors import BadInputError, LockfileError
from sunbeam_sync.fsutil import remove_tree
from sunbeam_sync.gitmirror import Mirror
from sunbeam_sync.interpreter import find_interpreter
from sunbeam_sync.layout import TMP_PREFIX, CacheLayout
from sunbeam_sync.linkmode import resolve_link_mode, same_filesystem
from sunbeam_sync.locks import FileLock
from sunbeam_sync.logs import Logger, Redactor, SyncLog
from sunbeam_sync.refs import validate_ref, validate_repo
from sunbeam_sync.settings import Bytecode, SyncSettings
from sunbeam_sync.usage import damage_marker, record_use
from sunbeam_sync.verify import verify_env


class PrepareRequest(BaseModel):
    repo: str
    ref: str
    project_dir: str = "."
    python: str | None = None
    groups: list[str] = Field(default_factory=list)
    extras: list[str] = Field(default_factory=list)
    # Packages the caller cannot work without (the agent needs `prefect`): checked in the lock
    # before anything is built, so a lock that can never run costs no build.
    required: list[str] = Field(default_factory=list)


class PrepareResult(BaseModel):
    repo: str
    ref: str
    commit: str
    checkout: str  # the project folder inside the commit's checkout
    env_key: str
    env: str
    python: str
    cache_hit: bool
    built: bool
    healed: bool
    heal_reason: str | None = None
    link_mode: str
    pythonpath: list[str]
    timings: dict[str, float]


class PreparedEnv:
    """A ready environment plus the shared leases that keep `gc` away from it until released."""

    def __init__(self, result: PrepareResult, leases: list[FileLock]) -> None:
        self.result = result
        self._leases = leases

    def release(self) -> None:
        for lease in self._leases:
            lease.release()
        self._leases = []

    def __enter__(self) -> PreparedEnv:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def prepare(
    request: PrepareRequest,
    *,
    settings: SyncSettings | None = None,
    logger: Logger | None = None,
    cancel: threading.Event | None = None,
) -> PreparedEnv:
    settings = settings or SyncSettings()
    token = settings.git_token.get_secret_value() if settings.git_token else ""
    log = SyncLog(logger, Redactor([token]))
    repo = validate_repo(request.repo)
    ref = validate_ref(request.ref)
    project_dir = _validate_project_dir(request.project_dir)
    for name in (*request.groups, *request.extras):
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise BadInputError(f"invalid group or extra name {name!r}")
    layout = CacheLayout(Path(settings.cache_dir).expanduser().absolute())
    layout.ensure()
    timings: dict[str, float] = {}
    leases: list[FileLock] = []
    try:
        clock = time.monotonic()
        mirror = Mirror(repo, layout, settings, log, cancel)
        commit, fetched = mirror.resolve_or_fetch(ref)
        timings["fetch"] = _lap(clock)
        log.info(
            "git", f"{ref} is commit {commit}" + ("" if fetched else " (already in the mirror)")
        )

        clock = time.monotonic()
        leases.append(
            layout.checkout_lock(mirror.rid, commit).acquire(
                timeout=settings.lock_timeout, log=log, cancel=cancel
            )
        )
        root = mirror.checkout(commit)
        project = (root / project_dir).resolve()
        lock_bytes = _read_project(project, project_dir, commit, ref)
        _check_required(lock_bytes, request.required, f"{project_dir!r} at {ref} ({commit[:12]})")
        timings["checkout"] = _lap(clock)

        clock = time.monotonic()
        interpreter = find_interpreter(request.python or settings.python, project)
        key = env_key(lock_bytes, interpreter, request.groups, request.extras)
        env = layout.env(key.key)
        log.info(
            "env",
            f"key {key.key[:16]} (uv.lock sha256 {key.inputs['lock_sha256'][:12]}, "
            f"{interpreter.label} {interpreter.platform}, groups {key.inputs['groups'] or '-'}, "
            f"extras {key.inputs['extras'] or '-'})",
        )
        use = layout.use_lock(key.key).acquire(
            timeout=settings.lock_timeout, log=log, cancel=cancel
        )
        leases.append(use)
        damage = _damage(layout, env, key.key)
        timings["verify"] = _lap(clock)

        clock = time.monotonic()
        cache_hit = damage is None
        built = healed = False
        heal_reason: str | None = None
        link_mode = resolve_link_mode(settings.link_mode, layout.envs)
        if cache_hit:
            log.info("env", f"cache hit: {env} verified")
        else:
            with layout.build_lock(key.key).acquire(
                timeout=settings.lock_timeout, log=log, cancel=cancel
            ):
                _clear_stale_temporaries(layout, key.key)
                # Someone may have built it while we waited. If that was a thread of this process,
                # its post-build verification (moments ago, same folder) stands for ours.
                waited_for_build = damage == "missing" and _published_here(env, key.key)
                damage = None if waited_for_build else _damage(layout, env, key.key)
                if damage is None:
                    cache_hit = True
                    log.info("env", f"built meanwhile by another run; reusing {env}")
                else:
                    if env.exists():
                        healed, heal_reason = True, str(damage)
                        bad = layout.quarantine_path(env)
                        env.rename(bad)
                        log.warning("heal", f"environment {key.key[:12]} is damaged: {damage}")
                        log.warning("heal", f"moved it aside to {bad.name}; rebuilding")
                    else:
                        log.info(
                            "env", f"no environment for this lock yet; building {env.name[:12]}"
                        )
                    _build(
                        layout,
                        settings,
                        log,
                        cancel,
                        BuildRequest(
                            key=key,
                            project=project,
                            interpreter=interpreter,
                            link_mode=link_mode,
                            groups=request.groups,
                            extras=request.extras,
                            repo=repo,
                            commit=commit,
                        ),
                    )
                    damage_marker(layout, key.key).unlink(missing_ok=True)
                    _PUBLISHED[key.key] = env.stat().st_ino
                    built = True
            if built and settings.bytecode is Bytecode.BACKGROUND:
                compile_in_background(env, use, log, done=layout.state / f"{key.key}.compiled")
        timings["build"] = _lap(clock)

        record_use(layout, key.key, repo=repo, ref=ref, commit=commit)
        result = PrepareResult(
            repo=repo,
            ref=ref,
            commit=commit,
            checkout=str(project),
            env_key=key.key,
            env=str(env),
            python=str(env / "bin" / "python"),
            cache_hit=cache_hit,
            built=built,
            healed=healed,
            heal_reason=heal_reason,
            link_mode=link_mode.value,
            pythonpath=_pythonpath(project),
            timings=timings,
        )
        log.info(
            "sync",
            "ready: "
            + ("cache hit" if cache_hit else "healed" if healed else "built")
            + " | "
            + " ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
        )
        return PreparedEnv(result, leases)
    except BaseException:
        for lease in leases:
            lease.release()
        raise


def _build(
    layout: CacheLayout,
    settings: SyncSettings,
    log: SyncLog,
    cancel: threading.Event | None,
    request: BuildRequest,
) -> None:
    builder = Builder(layout, settings, log, cancel)
    if not same_filesystem(
        builder.uv_cache if builder.uv_cache.exists() else layout.root, layout.envs
    ):
        log.warning("build", "uv's cache is on another filesystem: every install is a full copy")
    _parse_lock(request.project / "uv.lock")
    builder.check_lock(request.project)
    builder.build(request)


_PUBLISHED: dict[str, int] = {}  # key → inode of the env folder this process built and verified


def _published_here(env: Path, key: str) -> bool:
    try:
        return _PUBLISHED.get(key) == env.stat().st_ino
    except OSError:
        return False


def _damage(layout: CacheLayout, env: Path, key: str) -> object | None:
    if not env.exists():
        return "missing"
    marker = damage_marker(layout, key)
    if marker.exists():
        return f"a deep verification found changed files ({marker.read_text().strip()[:200]})"
    return verify_env(env, key)


def _clear_stale_temporaries(layout: CacheLayout, key: str) -> None:
    # Only the holder of the key's build lock creates its temporaries, and we hold it now:
    # whatever is left belongs to a build that was killed.
    for tmp in layout.envs.glob(f"{TMP_PREFIX}{key}-*"):
        remove_tree(tmp)


def _validate_project_dir(project_dir: str) -> str:
    if not isinstance(project_dir, str) or any(ord(c) < 32 for c in project_dir):
        raise BadInputError("invalid project folder")
    path = PurePosixPath(project_dir or ".")
    if path.is_absolute() or ".." in path.parts or project_dir.startswith("-"):
        raise BadInputError(
            f"project folder {project_dir!r} must be a relative path inside the repository"
        )
    return str(path)


def _read_project(project: Path, project_dir: str, commit: str, ref: str) -> bytes:
    where = f"{project_dir!r} at {ref} ({commit[:12]})"
    if not project.is_dir():
        raise BadInputError(f"project folder {where} does not exist: check --project-dir")
    if not (project / "pyproject.toml").is_file():
        raise LockfileError(f"no pyproject.toml in {where}")
    lock = project / "uv.lock"
    if not lock.is_file():
        raise LockfileError(f"no uv.lock in {where}: run `uv lock` there and commit uv.lock")
    return lock.read_bytes()


_LOCKED_NAME = re.compile(rb'^name = "([^"]+)"$', re.MULTILINE)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_required(lock_bytes: bytes, required: list[str], where: str) -> None:
    if not required:
        return
    locked = {_normalize(m.decode()) for m in _LOCKED_NAME.findall(lock_bytes)}
    missing = [name for name in required if _normalize(name) not in locked]
    if missing:
        raise LockfileError(
            f"uv.lock in {where} does not include {', '.join(missing)}: add it to the "
            "project's dependencies, run `uv lock` and commit uv.lock"
        )


def _parse_lock(lock: Path) -> None:
    # Only before building: a lock that built an env once parses, so cache hits skip this.
    try:
        tomllib.loads(lock.read_text())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LockfileError(f"uv.lock is not valid TOML: {exc}") from None


def _pythonpath(project: Path) -> list[str]:
    paths = [str(project)]
    if (project / "src").is_dir():
        paths.insert(0, str(project / "src"))
    return paths


def _lap(start: float) -> float:
    return round(time.monotonic() - start, 4)
