"""Sunbeam agent: Prefect worker type `sunbeam` and the `sunbeam-run` flow-run launcher.

Prefect imports `sunbeam_agent.host.worker` through the `prefect.collections` entry point; importing
it is what registers the `sunbeam` worker type. This package itself imports nothing heavy, so
`sunbeam-run` starts without importing Prefect.
"""

from typing import Any

__all__ = ["SunbeamJobConfiguration", "SunbeamWorker", "SunbeamWorkerVariables"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sunbeam_agent.host import worker

        return getattr(worker, name)
    raise AttributeError(name)
