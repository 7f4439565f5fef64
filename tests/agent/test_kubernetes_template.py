"""The kubernetes pool template, rendered for a real flow run by prefect-kubernetes' own job
configuration code, is a valid batch/v1 Job (checked against the kubernetes client's models)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from prefect.client.orchestration import get_client
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

from tests.support.agent_stack import BIN, Stack

POOL = "k8s-template-tests"


class _Response:
    """What the kubernetes client's deserializer reads: a body in `.data`."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body)


def _render(stack: Stack, flow_run_id: Any) -> KubernetesWorkerJobConfiguration:
    async def render() -> KubernetesWorkerJobConfiguration:
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            deployment = await client.read_deployment(run.deployment_id)
            pool = await client.read_work_pool(POOL)
            flow = await client.read_flow(run.flow_id)
            config = await KubernetesWorkerJobConfiguration.from_template_and_values(
                pool.base_job_template,
                {**(deployment.job_variables or {}), **(run.job_variables or {})},
            )
            config.prepare_for_flow_run(run, deployment, flow, pool, "k8s-test-worker")
            return config

    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
        return asyncio.run(render())


def test_kubernetes_job_manifest_for_a_real_run_is_a_valid_job(stack: Stack) -> None:
    from kubernetes_asyncio.client import ApiClient

    created = subprocess.run(
        [
            str(BIN / "sunbeam-pool"),
            "create",
            POOL,
            "--type",
            "kubernetes",
            "--image",
            "registry.example/sunbeam-agent:1.0",
        ],
        env=stack.server.env(),
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    deployment = stack.deployment("k8s-main", pool=POOL)
    run = stack.submit(deployment, job_variables={"ref": "feature-k8s"})
    config = _render(stack, run.id)
    manifest = config.job_manifest

    async def validate() -> Any:
        async with ApiClient() as api:
            job = api.deserialize(_Response(manifest), "V1Job")
            return job, api.sanitize_for_serialization(job)

    job, round_trip = asyncio.run(validate())
    # Every field of the manifest is a field of the Job model (nothing dropped on the way).
    assert _differences(_strip_none(round_trip), _strip_none(manifest)) == []

    pod = job.spec.template.spec
    container = pod.containers[0]
    assert container.image == "registry.example/sunbeam-agent:1.0"
    assert container.args == ["sunbeam-run"]
    assert pod.security_context.run_as_non_root is True
    assert pod.security_context.run_as_user == 10001
    assert container.security_context.allow_privilege_escalation is False
    assert container.resources.requests == {"cpu": "500m", "memory": "1Gi"}
    assert [m.mount_path for m in container.volume_mounts] == ["/cache"]
    assert pod.volumes[0].host_path.path == "/var/lib/sunbeam/cache"
    env = {e.name: e.value for e in container.env}
    assert env["PREFECT__FLOW_RUN_ID"] == str(run.id)
    assert env["PREFECT_API_URL"]
    # sunbeam-run reads the run's ref from the API: the per-run ref is on the run itself.
    assert stack.client.read_flow_run(run.id).job_variables == {"ref": "feature-k8s"}
    stack.client.delete_flow_run(run.id)


def _differences(got: Any, want: Any, path: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        return [
            d
            for key in sorted(set(got) | set(want))
            for d in _differences(got.get(key), want.get(key), f"{path}.{key}")
        ]
    if isinstance(want, list) and isinstance(got, list) and len(got) == len(want):
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in _differences(g, w, f"{path}[{i}]")
        ]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value
