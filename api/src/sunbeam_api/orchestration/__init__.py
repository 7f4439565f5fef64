"""Orchestration through Prefect and git: runs, prewarms, deployments, busy answers, remote refs."""
