"""The per-run launcher `sunbeam-run`: resolve the run, sync its ref, start the flow in its env.

Stdlib and the sync only: Prefect is never imported on this path (tests/test_package_graph.py)."""
