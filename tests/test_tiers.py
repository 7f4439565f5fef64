"""The suite in tiers: on a machine without Docker or Chromium, `uv run pytest` skips those tests
and its last lines say what it skipped, why, and the command that runs them; under CI's
SUNBEAM_TESTS_REQUIRE the same run fails instead, in one line.

Each case runs pytest in a subprocess on real tests of both tiers (collection decides: a skipped
test starts no service), in an environment made to lack both: DOCKER_HOST names a socket that
does not exist, and PATH holds only this venv's commands (no chromium, chromedriver or psql).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each case starts a pytest (about 5 s of CPU)
ROOT = Path(__file__).resolve().parents[1]
DOCKER_TESTS = "tests/containers/test_compose.py"  # docker-marked tests and static checks
UI_TESTS = "tests/ui/test_browser.py"  # every test drives the browser
PG_TEST = "tests/agent/test_compat_and_postgres.py::test_agent_on_a_postgres_backed_server"
USAGE_ERROR = pytest.ExitCode.USAGE_ERROR


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    socket: str  # where DOCKER_HOST pointed
    outcomes: dict[str, str]  # test → passed, skipped or failed, from the JUnit report

    def of(self, path: str) -> list[str]:
        return [outcome for test, outcome in self.outcomes.items() if test.startswith(path)]


def run_pytest(tmp_path: Path, *args: str, **env_vars: str) -> Run:
    socket = tmp_path / "no-docker.sock"
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUNBEAM_", "DOCKER_"))}
    env |= {"DOCKER_HOST": f"unix://{socket}", "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *args],
        cwd=ROOT,
        env=env | env_vars,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outcomes = {}
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            path = case.get("classname", "").replace(".", "/") + ".py"
            kinds = {child.tag for child in case} & {"skipped", "failure", "error"}
            outcomes[f"{path}::{case.get('name')}"] = kinds.pop() if kinds else "passed"
        report.unlink()
    return Run(proc, str(socket), outcomes)


def test_without_docker_and_chromium_those_tiers_skip_and_the_end_says_why_and_how(
    tmp_path: Path,
) -> None:
    run = run_pytest(tmp_path, DOCKER_TESTS, UI_TESTS, PG_TEST)
    assert run.proc.returncode == 0, run.proc.stdout[-3000:] + run.proc.stderr[-2000:]
    ui, docker = run.of(UI_TESTS), run.of(DOCKER_TESTS)
    assert ui and set(ui) == {"skipped"}
    assert run.of(PG_TEST) == ["skipped"]
    assert set(docker) == {"skipped", "passed"}  # the Compose file's static checks still run

    # The last lines before pytest's count: what was skipped, why, and what runs it.
    lines = run.proc.stdout.rstrip().splitlines()
    header = max(i for i, line in enumerate(lines) if "tiers skipped on this machine" in line)
    docker_line, ui_line, pg_line, everything = lines[header + 1 : -1]
    assert docker_line.startswith(f"docker: {docker.count('skipped')} tests skipped")
    assert f"no Docker engine answers at unix://{run.socket} (No such file or directory)" in (
        docker_line
    )
    assert "`bash .ci/docker-setup.sh`" in docker_line
    assert ui_line.startswith(f"ui: {len(ui)} tests skipped")
    assert "no chromium and no chromedriver on PATH" in ui_line
    assert "`apt-get install chromium chromium-driver`" in ui_line
    assert pg_line.startswith("postgres: 1 test skipped") and "no psql on PATH" in pg_line
    assert "`bash .ci/run`" in everything
    skipped = len(ui) + docker.count("skipped") + 1
    assert re.fullmatch(rf"=+ {docker.count('passed')} passed, {skipped} skipped in .*", lines[-1])


def test_ci_requiring_every_tier_fails_the_run_in_one_line_naming_what_is_missing(
    tmp_path: Path,
) -> None:
    run = run_pytest(tmp_path, DOCKER_TESTS, UI_TESTS, PG_TEST, SUNBEAM_TESTS_REQUIRE="all")
    assert run.proc.returncode == USAGE_ERROR, run.proc.stdout[-3000:]
    assert not run.outcomes  # nothing ran
    assert "Traceback" not in run.proc.stderr + run.proc.stdout
    errors = [line for line in run.proc.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, run.proc.stderr
    assert errors[0].startswith("ERROR: SUNBEAM_TESTS_REQUIRE=all, but the docker tier cannot run")
    assert f"no Docker engine answers at unix://{run.socket}" in errors[0]
    assert "the ui tier cannot run: no chromium and no chromedriver on PATH" in errors[0]
    assert "the postgres tier cannot run: no psql on PATH" in errors[0]


def test_a_required_tier_whose_tests_are_deselected_is_not_needed(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, DOCKER_TESTS, "-m", "not docker", SUNBEAM_TESTS_REQUIRE="all")
    assert run.proc.returncode == 0, run.proc.stdout[-3000:] + run.proc.stderr[-2000:]
    assert run.outcomes and set(run.outcomes.values()) == {"passed"}
    assert "tiers skipped" not in run.proc.stdout


def test_skip_docker_skips_the_docker_tier_and_a_requirement_refuses_it(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, DOCKER_TESTS, SUNBEAM_SKIP_DOCKER="1")
    assert run.proc.returncode == 0, run.proc.stdout[-3000:] + run.proc.stderr[-2000:]
    assert "skipped" in run.of(DOCKER_TESTS)
    assert (
        "docker: " in run.proc.stdout and "SUNBEAM_SKIP_DOCKER=1 asks to skip it" in run.proc.stdout
    )

    run = run_pytest(
        tmp_path, DOCKER_TESTS, SUNBEAM_SKIP_DOCKER="1", SUNBEAM_TESTS_REQUIRE="docker,gpu"
    )
    assert run.proc.returncode == USAGE_ERROR
    assert "ERROR: SUNBEAM_TESTS_REQUIRE=docker,gpu names no tier gpu" in run.proc.stderr
    run = run_pytest(
        tmp_path, DOCKER_TESTS, SUNBEAM_SKIP_DOCKER="1", SUNBEAM_TESTS_REQUIRE="docker"
    )
    assert run.proc.returncode == USAGE_ERROR
    assert (
        "ERROR: SUNBEAM_TESTS_REQUIRE=docker, but the docker tier cannot run: "
        "SUNBEAM_SKIP_DOCKER=1 asks to skip it" in run.proc.stderr
    )
