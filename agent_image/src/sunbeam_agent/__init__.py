"""Sunbeam agent: Prefect worker type `sunbeam`.

Prefect imports this package through the `prefect.collections` entry point; importing the
worker module is what registers the `sunbeam` worker type.
"""

from sunbeam_agent.worker import SunbeamJobConfiguration, SunbeamWorker, SunbeamWorkerVariables

__all__ = ["SunbeamJobConfiguration", "SunbeamWorker", "SunbeamWorkerVariables"]
