"""Sunbeam agent: Prefect worker type `sunbeam`."""
