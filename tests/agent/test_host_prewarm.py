"""Every host prewarmed: three agents, each with its own cache (three hosts), one push.

One signed push to the real API webhook makes one sync-only run per host, each on that host's
queue and run by that host's agent, so each cache has the env; then nine runs of the commit on
the shared queue, three held on each host at once, build nothing anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from sunbeam_agent.host.identity import HOST_ID_FILE
from sunbeam_api.settings import Settings
from sunbeam_contracts.hosts import host_queue, worker_host
from tests.support.agent_stack import PREFECT_PIN, Agent, Stack, labels, worker_env
from tests.support.api_stack import served
from tests.support.pipeline_repo import pyproject
from tests.support.ports import free_port
from tests.support.processes import wait_for

POOL = "agent-hosts"
SECRET = "host-prewarm-secret"
HOSTS = 3
RUNS_PER_HOST = 3


@pytest.fixture
def agents(stack: Stack, tmp_path: Path) -> Iterator[list[tuple[Agent, Path]]]:
    """Three agents, each on a cache folder of its own, at most RUNS_PER_HOST runs at once."""
    started: list[tuple[Agent, Path]] = []
    try:
        for i in range(HOSTS):
            cache = tmp_path / f"cache-{i}"
            env = worker_env(stack.server, cache, stack.uv_cache)
            env.update(
                SUNBEAM_WORK_POOL=POOL,
                SUNBEAM_WORKER_LIMIT=str(RUNS_PER_HOST),
                SUNBEAM_STOP_TIMEOUT="20",
            )
            started.append((Agent(env, tmp_path / f"agent-{i}.log").launch(), cache))
        for agent, _ in started:  # all start at once: start-up is slow on a busy machine
            agent.wait_healthy()
        yield started
    finally:
        for agent, _ in started:  # all drain at once, then each is waited for
            if agent.process is not None:
                agent.process.send(signal.SIGTERM)
        for agent, _ in started:
            agent.stop()


@pytest.fixture
def main_deployment(stack: Stack) -> Iterator[UUID]:
    """run-sunbeam/main (what the webhook prewarms from) on the hosts' pool, the test flow."""
    deployment_id = stack.pipeline_main(POOL)
    try:
        yield deployment_id
    finally:
        stack.client.delete_deployment(deployment_id)  # the API suite makes its own


def _signed_push(ref: str, commit: str) -> dict[str, object]:
    body = json.dumps({"ref": ref, "after": commit}).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": "push"}
    return {"content": body, "headers": headers}


def _live_hosts(stack: Stack) -> set[str]:
    workers = stack.client.read_workers_for_work_pool(POOL)
    return {host for w in workers if (host := worker_host(w.name))}


def test_one_push_prewarms_every_host_then_no_run_builds(
    stack: Stack, agents: list[tuple[Agent, Path]], main_deployment: UUID, tmp_path: Path
) -> None:
    caches = {(cache / HOST_ID_FILE).read_text().strip(): cache for _, cache in agents}
    assert len(caches) == HOSTS  # one host per cache folder, each recorded in its cache
    wait_for(lambda: _live_hosts(stack) >= set(caches), "three hosts heartbeating", timeout=60)
    files = {"pyproject.toml": pyproject("demo-hosts", [PREFECT_PIN, "sunbeam-extra"])}
    commit = stack.repo.push_branch("hosts", files, lock_from=(stack.wheelhouse,))

    settings = Settings(
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/",  # unused by the webhook
        prefect_api_url=stack.server.api_url,
        work_pool=POOL,
        github_webhook_secret=SECRET,
    )
    with served(settings) as api:
        r = api.post("/hooks/github", **_signed_push("refs/heads/hosts", commit))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["hosts"] == sorted(caches) and len(answer["runs"]) == HOSTS

    for run_id, host in zip(answer["runs"], answer["hosts"], strict=True):
        warm = stack.wait(UUID(run_id))
        assert warm.state is not None and warm.state.is_completed(), warm.state
        assert "Prewarmed" in (warm.state.message or "")
        assert warm.work_queue_name == host_queue(host)
        # Run by that host's own agent, and built into that host's cache.
        assert worker_host(warm.labels["prefect.worker.name"]) == host
        got = labels(warm)
        assert got["sunbeam.commit"] == commit and got["sunbeam.built"] == "true"
        assert (caches[host] / "envs" / got["sunbeam.env_key"]).is_dir()

    # Nine runs on the shared queue. Each is held once started, so all nine running at once
    # means every host holds RUNS_PER_HOST of them (its worker limit): each host ran three.
    gate, outs = (
        tmp_path / "gate",
        [tmp_path / f"run-{i}.json" for i in range(HOSTS * RUNS_PER_HOST)],
    )
    runs = [
        stack.submit(main_deployment, {"out": str(out), "gate": str(gate)}, {"ref": commit})
        for out in outs
    ]
    wait_for(lambda: all(out.exists() for out in outs), "all nine runs started", timeout=240)
    gate.touch()
    finals = [stack.wait(run.id) for run in runs]
    ran_on = sorted(worker_host(f.labels["prefect.worker.name"]) or "?" for f in finals)
    assert ran_on == sorted(h for h in caches for _ in range(RUNS_PER_HOST))
    for final in finals:
        assert final.state is not None and final.state.is_completed(), final.state
        got = labels(final)
        assert got["sunbeam.commit"] == commit
        assert got["sunbeam.built"] == "false" and got["sunbeam.cache_hit"] == "true", got
