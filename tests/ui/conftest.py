"""A real pipeline run on two refs into SecantusDB, the API on a socket, and headless Chromium.

`main` runs the pipeline as configured; `feat/efficiency` runs it with one stage's setting
changed (the efficiency window), so its branch preview has exactly that stage's series changed.
The browser is Debian's chromium driven by Debian's chromedriver (Selenium), found on PATH; every host but
127.0.0.1 is unresolvable to it, and its performance log records every request it made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pymongo
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from sunbeam_api.settings import Settings
from tests.support.api_stack import LiveServer
from tests.support.gitrepo import PipelineRepo
from tests.support.mongo import mongo_server
from tests.support.pipeline_env import EVENTS_TOML, make_env, write_config
from tests.support.prefect_server import PrefectServer
from tests.support.tiers import browser_paths
from tests.support.ui_stack import (
    BRANCH,
    BRANCH_CONFIG,
    DB,
    EVENT,
    HOST,
    POOL,
    Stack,
)


def _run(ref: str, directory: Path, uri: str, extra: str = "") -> dict:
    from sunbeam_pipeline.flow import run_sunbeam

    with pytest.MonkeyPatch.context() as monkeypatch:
        make_env(directory, uri, DB, monkeypatch)
        write_config(directory, EVENTS_TOML, extra)
        monkeypatch.setenv("SUNBEAM_REF", ref)
        return run_sunbeam(events=[EVENT])


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, prefect_server: PrefectServer
) -> Iterator[Stack]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with mongo_server(tmp_path_factory.mktemp("ui-mongo")) as mongo:
        uri = f"mongodb://127.0.0.1:{mongo.port}/"
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
            runs = {
                "main": _run("main", tmp_path_factory.mktemp("main"), uri),
                BRANCH: _run(BRANCH, tmp_path_factory.mktemp("branch"), uri, BRANCH_CONFIG),
            }
        repo = PipelineRepo(tmp_path_factory.mktemp("pipeline-repo"))
        heads = {ref: repo.commit(f"work on {ref}", branch=ref) for ref in ("main", BRANCH)}
        heads |= {ref: repo.commit(f"work on {ref}", branch=ref) for ref, *_ in AGENT_RUNS}
        _as_the_agent(prefect_server.api_url, heads)
        settings = Settings(  # type: ignore[call-arg]
            mongodb_uri=uri, mongo_db=DB, prefect_api_url=prefect_server.api_url,
            pipeline_repo=repo.url, work_pool=POOL,
        )  # fmt: skip
        client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        with LiveServer(settings) as server:
            yield Stack(
                server.url, client[DB], prefect_server.api_url, runs,
                tmp_path_factory.mktemp("screenshots"), heads,
            )  # fmt: skip
        client.close()


# Runs of other branches as the agent leaves them, for the refs page (the results above stay
# the only runs of main and the branch): (ref, state, message, labels).
AGENT_RUNS = [
    ("try-me", "COMPLETED", None, {"sunbeam.phase": "synced", "sunbeam.env_key": "a1b2c3d4" * 8}),
    ("fix/units", "PENDING", None, {"sunbeam.phase": "building", "sunbeam.env_key": "e5f6" * 16}),
    ("forgot-lock", "FAILED", "uv.lock in pipeline is out of date with pyproject.toml (tabulate "
     "in pyproject.toml, not in uv.lock): run `uv lock` and commit uv.lock", {}),
]  # fmt: skip


def _as_the_agent(api_url: str, heads: dict[str, str]) -> None:
    """A live agent host, and runs labelled as the agent labels them (Prefect's REST API)."""
    worker = f"sunbeam-0001@{HOST}"
    with httpx.Client(base_url=api_url, timeout=30) as api:
        api.post("/work_pools/", json={"name": POOL, "type": "sunbeam"}).raise_for_status()
        beat = {"name": worker, "heartbeat_interval_seconds": 30}
        api.post(f"/work_pools/{POOL}/workers/heartbeat", json=beat).raise_for_status()
        flow_id = api.get("/flows/name/run-sunbeam").json()["id"]
        for ref, state, message, labels in AGENT_RUNS:
            run = {
                "flow_id": flow_id,
                "name": f"{ref}@{heads[ref][:8]} (ui-test)",
                "tags": [f"sunbeam-ref:{ref}", f"sunbeam-commit:{heads[ref][:8]}"],
                "job_variables": {"ref": ref},
                "labels": {"prefect.worker.name": worker, "sunbeam.ref": ref,
                           "sunbeam.commit": heads[ref], **labels},
                "state": {"type": state, "message": message},
            }  # fmt: skip
            api.post("/flow_runs/", json=run).raise_for_status()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    paths = browser_paths()  # tests/conftest.py skips these tests (the `ui` tier) without them
    if paths is None:
        pytest.fail(
            "Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
        )
    chromium, chromedriver = paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-default-apps", "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        # Every address but 127.0.0.1 is unreachable, as on a laptop at the track.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
