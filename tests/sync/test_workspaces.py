"""Issue 25 §2: uv workspaces: one lock at the root, members with their own dependencies.

A deployment names the workspace's folder (its root) or a member's folder; the env installs what
that project needs from the root lock, and the flow imports the members' packages from the
commit's checkout (the flow's path, as the agent sets it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sunbeam_agent.launch.flow_env import flow_environment
from sunbeam_sync import LockfileError, PrepareResult, SyncSettings
from tests.support.corpus import Shape, pyproject, run_flow, workspace, write_shape
from tests.support.gitrepo import PipelineRepo
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import env_python, prep, run_cli
from tests.support.wheels import build_wheel


@pytest.fixture(scope="module")
def with_prefect(index: LocalIndex, tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    # A stand-in `prefect` distribution: the agent's flow environment requires one in the env.
    index.add(build_wheel(tmp_path_factory.mktemp("prefect-wheel"), "prefect", "3.0.0"))
    return index


# The workspace's repository and its projects' shapes, by project folder.
Workspace = tuple[PipelineRepo, dict[str, Shape]]


@pytest.fixture
def ws(tmp_path: Path, index: LocalIndex) -> Workspace:
    repo = PipelineRepo(tmp_path / "repo")
    shapes = write_shape(workspace, repo, index)
    return repo, {s.project_dir: s for s in shapes}


MEMBER = "packages/prefect-climate"


def _installed(result: PrepareResult) -> set[str]:
    code = "import importlib.metadata as m; print(' '.join(d.name for d in m.distributions()))"
    return set(env_python(result, code).split())


def test_workspace_root_flow_imports_its_members(ws: Workspace, settings: SyncSettings) -> None:
    repo, shapes = ws
    result = prep(settings, repo.url, "main")
    assert _installed(result) == {"alpha"}  # the member's own dependency; members themselves not
    assert run_flow(result, shapes["."].flow) == shapes["."].prints
    assert str(Path(result.checkout) / "packages" / "climate-core" / "src") in result.pythonpath


def test_member_folder_uses_the_workspace_root_lock(ws: Workspace, settings: SyncSettings) -> None:
    repo, shapes = ws
    member = MEMBER
    result = prep(settings, repo.url, "main", project_dir=member)
    assert result.built and result.checkout.endswith(member)
    assert _installed(result) == {"alpha", "beta"}  # the member's needs, through climate-core
    assert run_flow(result, shapes[member].flow) == shapes[member].prints
    again = prep(settings, repo.url, "main", project_dir=member + "/")
    assert again.cache_hit and again.env_key == result.env_key
    root = prep(settings, repo.url, "main")
    assert root.env_key != result.env_key  # a different package synced: a different env
    assert run_cli("verify", "--deep", "--cache-dir", str(settings.cache_dir)).returncode == 0


def test_member_env_is_shared_by_commits_that_change_only_code(
    ws: Workspace, settings: SyncSettings
) -> None:
    repo, shapes = ws
    member = MEMBER
    first = prep(settings, repo.url, "main", project_dir=member)
    repo.write(f"{member}/prefect_climate/__init__.py", "import beta\nSOURCE = 'changed'\n")
    repo.commit("member code only")
    second = prep(settings, repo.url, "main", project_dir=member)
    assert second.cache_hit and second.env_key == first.env_key and second.commit != first.commit
    assert run_flow(second, shapes[member].flow).startswith("hourly changed")


def test_folder_below_a_workspace_that_is_no_member_is_refused(
    ws: Workspace, settings: SyncSettings
) -> None:
    repo, _shapes = ws
    repo.write("tools/pyproject.toml", pyproject("tools", []))
    repo.commit("a folder that is not a member")
    with pytest.raises(LockfileError) as info:
        prep(settings, repo.url, "main", project_dir="tools")
    said = str(info.value)
    assert "not a member of the workspace" in said and "[tool.uv.workspace]" in said
    res = run_cli(
        "prepare", repo.url, "--ref", "main", "--project-dir", "tools",
        "--cache-dir", str(settings.cache_dir),
    )  # fmt: skip
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and last.startswith("sunbeam-sync: error:") and "members" in last


def test_agent_flow_environment_imports_the_members(
    tmp_path: Path, with_prefect: LocalIndex, settings: SyncSettings
) -> None:
    repo = PipelineRepo(tmp_path / "repo")
    shapes = {s.project_dir: s for s in write_shape(workspace, repo, with_prefect)}
    member = MEMBER
    text = (repo.work / member / "pyproject.toml").read_text()
    (repo.work / member / "pyproject.toml").write_text(
        text.replace('"beta==1.0"', '"beta==1.0", "prefect==3.0.0"')
    )
    subprocess.run(["uv", "lock", "-q", "--project", str(repo.work)], check=True)
    repo.commit("the member needs prefect")
    result = prep(settings, repo.url, "main", project_dir=member)
    env = {"PATH": os.environ["PATH"], **flow_environment(result, os.environ)}
    assert run_flow(result, shapes[member].flow, env) == shapes[member].prints


def test_virtual_workspace_root_installs_every_members_needs(
    tmp_path: Path, index: LocalIndex, settings: SyncSettings
) -> None:
    # A root that is no package itself (only [tool.uv.workspace]): `uv sync` there installs every
    # member, so the env has every member's dependencies and the flow's path every member.
    repo = PipelineRepo(tmp_path / "repo")
    workspace(repo, index)
    text = (repo.work / "pyproject.toml").read_text()
    root = text[text.index("[tool.uv.workspace]") :]
    (repo.work / "pyproject.toml").write_text(root)
    subprocess.run(["uv", "lock", "-q", "--project", str(repo.work)], check=True)
    repo.commit("a virtual workspace root")
    result = prep(settings, repo.url, "main")
    assert _installed(result) == {"alpha", "beta"}
    code = "import climate_core, prefect_climate; print(prefect_climate.SOURCE)"
    out = subprocess.run(
        [result.python, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": os.pathsep.join(result.pythonpath)},
        check=True,
    )
    assert out.stdout.strip() == "prefect-climate"


def test_stale_workspace_lock_is_found_from_a_member(ws: Workspace, settings: SyncSettings) -> None:
    repo, _shapes = ws
    prep(settings, repo.url, "main", project_dir=MEMBER)  # the lock's pass is remembered
    # climate-core (a member this one depends on) asks for gamma; nobody ran `uv lock`. The lock
    # bytes, so the env key, are unchanged: only the remembered check could let it through.
    core = repo.work / "packages" / "climate-core" / "pyproject.toml"
    core.write_text(core.read_text().replace('"alpha==1.0"', '"alpha==1.0", "gamma==1.0"'))
    repo.commit("climate-core needs gamma; uv.lock not updated")
    with pytest.raises(
        LockfileError,
        match=r"the workspace's uv\.lock \(above member packages/prefect-climate\) is out of date",
    ):
        prep(settings, repo.url, "main", project_dir=MEMBER)
