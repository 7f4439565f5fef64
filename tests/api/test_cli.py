"""`sunbeam deploy`: the CLI registers deployments through the same helper as the API."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.responses import DeploymentResponse

from sunbeam_api.settings import get_settings
from sunbeam_stack import cli
from tests.support.api_stack import POOL
from tests.support.prefect_server import PrefectServer

SUNBEAM = str(Path(sys.executable).with_name("sunbeam"))


def test_sunbeam_script_is_installed_and_quick() -> None:
    done = subprocess.run(
        [SUNBEAM, "deploy", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and "--cron" in done.stdout


@pytest.mark.usefixtures("cli_env")
def test_deploy_registers_a_ref_deployment(
    prefect: PrefectServer, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = "file:///srv/git/cli-pipeline.git"
    args = ["deploy", "--repo", repo, "--ref", "release/2.0", "--cron", "0 5 * * 1"]
    assert cli.main(args) == 0
    assert "run-sunbeam/ref-release-2.0" in capsys.readouterr().out

    async def read() -> DeploymentResponse:
        async with PrefectClient(api=prefect.api_url) as client:
            return await client.read_deployment_by_name("run-sunbeam/ref-release-2.0")

    deployment = asyncio.run(read())
    assert deployment.job_variables["repo_url"] == repo
    assert deployment.job_variables["ref"] == "release/2.0"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 5 * * 1"]


@pytest.fixture
def cli_env(prefect: PrefectServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PREFECT_API_URL", prefect.api_url)
    monkeypatch.setenv("SUNBEAM_WORK_POOL", POOL)
    monkeypatch.delenv("SUNBEAM_PIPELINE_REPO", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy"], "pass --repo URL or set SUNBEAM_PIPELINE_REPO"),
        (["deploy", "--repo", "file:///x", "--ref", "a..b"], "invalid ref 'a..b'"),
        (["deploy", "--repo", "file:///x", "--cron", "nightly"], "invalid cron expression"),
        (
            ["deploy", "--repo", "file:///x", "--pool", "missing-pool"],
            "work pool 'missing-pool' does not exist",
        ),
    ],
)
def test_deploy_reports_bad_input_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
