"""The package graph the contracts promise: the API stands on the contracts, not on the sync core.

Run in a fresh interpreter so nothing another test imported can hide an import.
"""

import subprocess
import sys

PROBE = """
import sys
import sunbeam_api.main, sunbeam_api.routers.runs, sunbeam_api.deployments
import sunbeam_contracts.run_labels, sunbeam_contracts.naming, sunbeam_contracts.ref_rules, sunbeam_contracts.tags
print(sorted(m for m in ("sunbeam_sync", "git", "sunbeam_stack", "sunbeam_agent") if m in sys.modules))
"""


def test_the_api_does_not_import_the_sync_core_or_git() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0] == "[]", done.stdout


def test_contracts_import_nothing_outside_the_standard_library() -> None:
    probe = (
        "import sys; before = set(sys.modules); "
        "import sunbeam_contracts.run_labels, sunbeam_contracts.naming, sunbeam_contracts.ref_rules, "
        "sunbeam_contracts.tags; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} "
        "- set(sys.stdlib_module_names) - {'sunbeam_contracts'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
