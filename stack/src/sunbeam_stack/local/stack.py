"""The local stack: Prefect server (SQLite), MongoDB-compatible server, agent worker and API.

Every service is a child process with its log under `<state>/logs/`. The work pool is created by
the agent's own entrypoint (as in the container); the pipeline deployments are then registered
with `sunbeam deploy` against the configured repository. Every service is started as
`python -m <its package>` with this interpreter, so it is the installed package that runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from sunbeam_agent.launch.warm import DIR_ENV as WARM_DIR_ENV
from sunbeam_stack.errors import StackError
from sunbeam_stack.local.ports import free_port
from sunbeam_stack.local.processes import Child, wait_until
from sunbeam_stack.local.state import Recorded, StackState, me, start_time
from sunbeam_sync import without_credentials

Say = Callable[[str], None]
MONGO = "mongodb"
# Seconds before restarting a crashed embedded MongoDB server: 1, 2, 4, ... at most 30; the count
# starts again once it has stayed up for a minute.
RESTART_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STABLE_SECONDS = 60.0


@dataclass
class StackConfig:
    state_dir: Path
    repo_url: str
    project_dir: str = "pipeline"
    pool: str = "sunbeam"
    prefect_port: int = 4200
    api_port: int = 8080
    mongo_port: int = 27017
    mongodb_uri: str | None = None  # a real MongoDB; None: embedded SecantusDB
    mongo_db: str = "sunbeam"
    api_key: str | None = None  # given to the API only
    api_key_file: Path | None = None  # where a key made by `sunbeam up` is stored
    deploy: bool = True

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}"


def _base_env(config: StackConfig) -> dict[str, str]:
    # The user's own Prefect profile must not point our children at another server, and no
    # service but the agent sees a credential its sync uses (git token, package index logins).
    env = without_credentials({k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")})
    env.pop("SUNBEAM_API_KEY", None)
    env.update(
        PREFECT_HOME=str(config.state_dir / "prefect"),
        PREFECT_API_URL=config.prefect_api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        SUNBEAM_WORK_POOL=config.pool,
        SUNBEAM_MONGO_DB=config.mongo_db,
    )
    return env


def warm_folder(state_dir: Path) -> Path:
    """The folder of this stack's warm interpreters, unless the user names one: one per stack,
    so two stacks of one user (`sunbeam up` beside `sunbeam demo`, two clones) never stop each
    other's to make room. Short: a socket's path in it has at most 107 bytes."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"sunbeam-warm-{os.getuid()}-{digest}"


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalStack:
    def __init__(self, config: StackConfig, say: Say = print) -> None:
        self.config = config
        self.say = say
        self.children: list[Child] = []
        self.mongodb_uri = config.mongodb_uri or f"mongodb://127.0.0.1:{config.mongo_port}/"
        self._mongo_restarts = 0
        self._mongo_restart_at: float | None = None

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        cfg = self.config
        cfg.logs.mkdir(parents=True, exist_ok=True)
        self.say(f"starting Sunbeam locally (logs in {cfg.logs})")
        self._start_prefect()
        self._start_mongo()
        self._start_agent()
        self._start_api()
        if cfg.deploy:
            self.deploy("main")

    def _launch(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        self.record()
        return child

    def record(self) -> None:
        """Write PIDs and URLs to `<state>/stack.json` (for the next `up` and `sunbeam env`)."""
        cfg = self.config
        children = [
            Recorded(c.name, c.pid, start_time(c.pid)) for c in self.children if c.pid is not None
        ]
        urls = {
            "PREFECT_API_URL": cfg.prefect_api,
            "SUNBEAM_API_URL": cfg.api_url,
            "MONGODB_URI": self.mongodb_uri,
        }
        key_file = str(cfg.api_key_file) if cfg.api_key_file else None
        StackState(me(), children, urls, key_file).write(cfg.state_dir)

    def _start_prefect(self) -> None:
        cfg = self.config
        env = _base_env(cfg)
        env.pop("PREFECT_API_URL")
        env.update(
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(cfg.prefect_port),
            PREFECT_UI_API_URL=cfg.prefect_api,
        )
        argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        argv += ["--port", str(cfg.prefect_port)]
        server = self._launch(Child("prefect-server", argv, env, cfg.logs / "prefect-server.log"))
        secs = wait_until(
            server, "the Prefect API", lambda: _http_ok(f"{cfg.prefect_api}/health"), 180, self.say
        )
        self.say(f"✓ Prefect server (SQLite) up in {secs:.1f}s")

    def _mongo_child(self) -> Child:
        cfg = self.config
        argv = [sys.executable, "-m", "secantus", "--host", "127.0.0.1"]
        argv += ["--port", str(cfg.mongo_port), "--storage-path", str(cfg.state_dir / "mongo")]
        return Child(MONGO, [*argv, "--standalone"], _base_env(cfg), cfg.logs / "mongodb.log")

    def _start_mongo(self) -> None:
        cfg = self.config
        if cfg.mongodb_uri:
            self.say("✓ MongoDB: using MONGODB_URI (not starting the embedded server)")
            return
        if importlib.util.find_spec("secantus") is None:
            raise StackError(
                "the embedded MongoDB server (SecantusDB) is not installed: run `uv sync` "
                "(it is in the dev dependencies) or set MONGODB_URI to a MongoDB server"
            )
        mongo = self._launch(self._mongo_child())
        secs = wait_until(
            mongo, "the MongoDB server", lambda: _tcp_open(cfg.mongo_port), 60, self.say
        )
        self.say(f"✓ MongoDB-compatible server (SecantusDB) up in {secs:.1f}s")

    def _start_agent(self) -> None:
        cfg = self.config
        env = _base_env(cfg)
        others = without_credentials()  # what every service gets: the rest are the credentials
        env.update({k: v for k, v in os.environ.items() if k not in others})
        env.update(
            MONGODB_URI=self.mongodb_uri,
            PREFECT_WORKER_WEBSERVER_HOST="127.0.0.1",
            PREFECT_WORKER_WEBSERVER_PORT=str(free_port()),
            SUNBEAM_STOP_TIMEOUT="20",
        )
        env.setdefault(WARM_DIR_ENV, str(warm_folder(cfg.state_dir)))
        agent = self._launch(
            Child("agent", [sys.executable, "-m", "sunbeam_agent"], env, cfg.logs / "agent.log")
        )
        health = f"http://127.0.0.1:{env['PREFECT_WORKER_WEBSERVER_PORT']}/health"
        secs = wait_until(agent, "the agent worker", lambda: _http_ok(health), 120, self.say)
        # Prefect's poll interval (10 s) is the fallback: the worker takes new runs as the
        # server's events stream announces them (host/wakeup.py).
        self.say(f"✓ agent worker on pool {cfg.pool!r} (started in {secs:.1f}s)")

    def _start_api(self) -> None:
        cfg = self.config
        env = _base_env(cfg)
        env.update(
            MONGODB_URI=self.mongodb_uri,
            SUNBEAM_API_HOST="127.0.0.1",
            SUNBEAM_API_PORT=str(cfg.api_port),
            SUNBEAM_PIPELINE_REPO=cfg.repo_url,
        )
        if cfg.api_key:
            env["SUNBEAM_API_KEY"] = cfg.api_key
        argv = [sys.executable, "-m", "sunbeam_api"]
        api = self._launch(Child("api", argv, env, cfg.logs / "api.log"))
        secs = wait_until(api, "the API", lambda: _http_ok(f"{cfg.api_url}/health"), 90, self.say)
        self.say(f"✓ API up in {secs:.1f}s")

    def deploy(self, ref: str) -> None:
        cfg = self.config
        argv = [sys.executable, "-m", "sunbeam_stack", "deploy", "--repo", cfg.repo_url]
        argv += ["--pool", cfg.pool, "--ref", ref, "--project-dir", cfg.project_dir]
        with (cfg.logs / "deploy.log").open("ab") as log:
            done = subprocess.run(
                argv, env=_base_env(cfg), stdout=log, stderr=subprocess.STDOUT, timeout=120
            )
        if done.returncode != 0:
            tail = (cfg.logs / "deploy.log").read_text(errors="replace")[-1500:]
            raise StackError(f"registering the {ref} deployment failed:\n{tail}")
        self.say(
            f"✓ deployment for {ref} registered against {cfg.repo_url}; a prewarm run builds "
            "its env and gives it the flow's parameters"
        )

    # ------------------------------------------------------------------ run / stop
    def check_alive(self) -> None:
        """Raise StackError when a service stopped; the embedded MongoDB is restarted instead."""
        for child in list(self.children):
            if child.running():
                if child.name == MONGO and time.monotonic() - child.started_at > STABLE_SECONDS:
                    self._mongo_restarts = 0  # it stayed up: the next crash waits 1 s again
                continue
            if child.name == MONGO:
                self._restart_mongo(child)
                continue
            raise StackError(f"{child.name} stopped unexpectedly; its log ends:\n{child.tail()}")

    def _restart_mongo(self, dead: Child) -> None:
        now = time.monotonic()
        if self._mongo_restart_at is None:
            delay = RESTART_BACKOFF[min(self._mongo_restarts, len(RESTART_BACKOFF) - 1)]
            code = dead.proc.returncode if dead.proc else None
            self.say(f"MongoDB server exited (code {code}); restarting it in {delay:.0f}s")
            self._mongo_restart_at = now + delay
            return
        if now < self._mongo_restart_at:
            return
        self._mongo_restart_at = None
        self._mongo_restarts += 1
        fresh = self._mongo_child()
        self.children[self.children.index(dead)] = fresh
        fresh.start()
        self.record()
        port = self.config.mongo_port
        try:
            wait_until(fresh, "the MongoDB server", lambda: _tcp_open(port), 60, self.say)
        except StackError as exc:
            self.say(f"MongoDB server did not come back: {exc}")
            return
        self.say(f"✓ MongoDB server restarted (restart {self._mongo_restarts}, pid {fresh.pid})")

    def stop(self) -> None:
        # Clients first, the server they report to last. A failure to stop one child (or to say
        # so) never keeps the others running.
        for child in reversed(self.children):
            try:
                if child.running():
                    self.say(f"stopping {child.name}")
            finally:
                if not child.stop():
                    self.say(f"{child.name} did not stop within {child.stop_timeout:.0f}s: killed")
