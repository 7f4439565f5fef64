"""`sunbeam deploy`: the CLI registers deployments through the same helper as the API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sunbeam_api.settings import get_settings
from sunbeam_contracts.tags import PREWARM_TAG
from sunbeam_stack import cli
from tests.support.api_stack import POOL, deployment_runs, read_deployment
from tests.support.gitrepo import PipelineRepo
from tests.support.prefect_server import PrefectServer

SUNBEAM = str(Path(sys.executable).with_name("sunbeam"))


def test_sunbeam_script_is_installed_and_quick() -> None:
    done = subprocess.run(
        [SUNBEAM, "deploy", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and "--cron" in done.stdout


@pytest.fixture(scope="module")
def cli_repo(tmp_path_factory: pytest.TempPathFactory) -> PipelineRepo:
    repo = PipelineRepo(tmp_path_factory.mktemp("cli-repo"))
    repo.commit("main")
    repo.commit("release 2.0", branch="release/2.0")
    return repo


@pytest.mark.usefixtures("cli_env")
def test_deploy_registers_a_ref_deployment_and_queues_its_prewarm(
    prefect: PrefectServer, cli_repo: PipelineRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["deploy", "--repo", cli_repo.url, "--ref", "release/2.0", "--cron", "0 5 * * 1"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "run-sunbeam/ref-release-2.0" in out and "prewarm run" in out

    deployment = read_deployment(prefect.api_url, "run-sunbeam/ref-release-2.0")
    assert deployment is not None
    assert deployment.job_variables["repo_url"] == cli_repo.url
    assert deployment.job_variables["ref"] == "release/2.0"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 5 * * 1"]
    # Issue 10.7: a sync-only run on the deployment's own ref, so the agent stores the flow's
    # parameter schema before anyone's first run; registering the same commit again adds none.
    assert cli.main(args) == 0
    # The server's scheduler may meanwhile add the cron schedule's runs: those are not ours.
    runs = [r for r in deployment_runs(prefect.api_url, deployment.id) if not r.auto_scheduled]
    assert len(runs) == 1 and runs[0].job_variables == {"sync_only": True}
    assert PREWARM_TAG in runs[0].tags


@pytest.mark.usefixtures("cli_env")
def test_deploy_to_a_repository_it_cannot_list_warns_and_registers(
    prefect: PrefectServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Compose's API runs `sunbeam deploy` on start without the agent's git token."""
    repo = (tmp_path / "not-here.git").as_uri()
    assert cli.main(["deploy", "--repo", repo, "--ref", "unlisted"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not list the refs" in err[0] and "warning" in err[0], err
    deployment = read_deployment(prefect.api_url, "run-sunbeam/ref-unlisted")
    assert deployment is not None
    assert [r.name for r in deployment_runs(prefect.api_url, deployment.id)] == ["prewarm-unlisted"]


@pytest.mark.usefixtures("cli_env")
def test_deploy_of_a_ref_the_repository_lacks_fails_in_one_line(
    prefect: PrefectServer, cli_repo: PipelineRepo
) -> None:
    """Issue 10 (a): like POST /pipelines, `sunbeam deploy` checks the ref first."""
    done = subprocess.run(
        [SUNBEAM, "deploy", "--repo", cli_repo.url, "--ref", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'nope'" in lines[0] and "push it first" in lines[0], lines
    assert read_deployment(prefect.api_url, "run-sunbeam/ref-nope") is None


@pytest.fixture
def cli_env(
    prefect: PrefectServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # outside any git checkout unless a test makes one
    monkeypatch.setenv("PREFECT_API_URL", prefect.api_url)
    monkeypatch.setenv("SUNBEAM_WORK_POOL", POOL)
    monkeypatch.delenv("SUNBEAM_PIPELINE_REPO", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
def test_deploy_defaults_repo_to_this_checkout(
    prefect: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10.10: like `sunbeam up`, `sunbeam deploy` uses the checkout it runs in."""
    checkout = PipelineRepo(tmp_path / "checkout").work
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@sunbeam.invalid", "-C", str(checkout)]
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "here"], check=True)
    subprocess.run([*git, "branch", "feature/here"], check=True)
    monkeypatch.chdir(checkout / ".")
    assert cli.main(["deploy", "--ref", "feature/here"]) == 0

    deployment = read_deployment(prefect.api_url, "run-sunbeam/ref-feature-here")
    assert deployment is not None
    assert deployment.job_variables["repo_url"] == checkout.resolve().as_uri()


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy"], "pass --repo URL or set SUNBEAM_PIPELINE_REPO"),
        (["deploy", "--repo", "file:///x", "--ref", "a..b"], "invalid ref 'a..b'"),
        (["deploy", "--repo", "file:///x", "--cron", "nightly"], "invalid cron expression"),
        (
            ["deploy", "--repo", "{repo}", "--pool", "missing-pool"],
            "work pool 'missing-pool' does not exist",
        ),
    ],
)
def test_deploy_reports_bad_input_in_one_line(
    args: list[str], message: str, cli_repo: PipelineRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([arg.replace("{repo}", cli_repo.url) for arg in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["pool", "create", "x", "--type", "nope"], "'nope' is not one of 'process'"),
        (["up", "--prefect-port", "abc"], "'--prefect-port'"),
        (["deploy", "--cron"], "Option '--cron' requires an argument"),
    ],
)
def test_a_mistyped_command_line_gets_one_line_not_a_traceback(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "sunbeam --help" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_a_command_group_given_no_command_prints_its_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["pool"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: sunbeam pool") and "create" in err and "Traceback" not in err
