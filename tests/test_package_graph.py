"""The package graph the house promises, checked from the code itself.

- The API stands on the contracts, not on the sync core; the contracts are standard library only.
- Every package outside the sync imports only the sync's public face (`sunbeam_sync.__all__`).
- `sunbeam-run` (the per-run launcher) loads neither Prefect nor pydantic.
- No package has an import cycle between its modules.

The import probes run in a fresh interpreter so nothing another test imported can hide an import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import sunbeam_sync

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "sunbeam_contracts": ROOT / "contracts/src/sunbeam_contracts",
    "sunbeam_sync": ROOT / "sync/src/sunbeam_sync",
    "sunbeam_agent": ROOT / "agent_image/src/sunbeam_agent",
    "sunbeam_api": ROOT / "api/src/sunbeam_api",
    "sunbeam_stack": ROOT / "stack/src/sunbeam_stack",
}
OUTSIDE_THE_SYNC = [
    PACKAGES["sunbeam_agent"],
    PACKAGES["sunbeam_api"],
    PACKAGES["sunbeam_stack"],
    ROOT / "benchmarks",
    ROOT / "pipeline/src",
]

PROBE = """
import sys
import sunbeam_api.main, sunbeam_api.routers.runs, sunbeam_api.orchestration.deployments
import sunbeam_contracts.run_labels, sunbeam_contracts.naming, sunbeam_contracts.ref_rules, sunbeam_contracts.tags
print(sorted(m for m in ("sunbeam_sync", "git", "sunbeam_stack", "sunbeam_agent") if m in sys.modules))
"""


def _probe(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_api_does_not_import_the_sync_core_or_git() -> None:
    assert _probe(PROBE).splitlines()[0] == "[]"


def test_contracts_import_nothing_outside_the_standard_library() -> None:
    probe = (
        "import sys; before = set(sys.modules); "
        "import sunbeam_contracts.run_labels, sunbeam_contracts.naming, sunbeam_contracts.ref_rules, "
        "sunbeam_contracts.tags; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} "
        "- set(sys.stdlib_module_names) - {'sunbeam_contracts'}))"
    )
    assert _probe(probe) == "[]"


def test_the_launcher_loads_neither_prefect_nor_pydantic() -> None:
    probe = (
        "import sys; import sunbeam_agent.launch.launcher; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'pydantic', 'httpx'}))"
    )
    assert _probe(probe) == "[]"


def _imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a file, wherever it stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def test_nothing_outside_the_sync_reaches_past_its_public_face() -> None:
    face = set(sunbeam_sync.__all__)
    reaches = []
    for folder in OUTSIDE_THE_SYNC:
        for path in sorted(folder.rglob("*.py")):
            for line, module, names in _imports(path):
                where = f"{path.relative_to(ROOT)}:{line}"
                if module.startswith("sunbeam_sync."):
                    reaches.append(f"{where} imports {module}")
                elif module == "sunbeam_sync":
                    reaches += [f"{where} imports {n}" for n in names if n not in face]
    assert reaches == [], "import these from sunbeam_sync's face instead:\n" + "\n".join(reaches)


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join((package, *parts)).removesuffix(".__init__")


def _load_time_imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """Imports run when the module loads: top level, not under TYPE_CHECKING, not in a function."""
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.ClassDef) else ():
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                yield sub.module, [a.name for a in sub.names]
            elif isinstance(sub, ast.Import):
                yield from ((a.name, []) for a in sub.names)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*trail, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_package_has_an_import_cycle() -> None:
    for package, root in PACKAGES.items():
        modules = {_module_name(package, root, p): p for p in root.rglob("*.py")}
        graph: dict[str, set[str]] = {}
        for name, path in modules.items():
            targets = graph.setdefault(name, set())
            for module, names in _load_time_imports(path):
                targets |= {f"{module}.{n}" for n in names if f"{module}.{n}" in modules}
                if module in modules and module != name:
                    targets.add(module)
        # A package's __init__ importing its own children is how packages are made, not a cycle.
        for name in graph:
            graph[name] = {t for t in graph[name] if not t.startswith(f"{name}.")}
        assert _cycle(graph) is None, f"{package}: import cycle {' -> '.join(_cycle(graph) or [])}"
