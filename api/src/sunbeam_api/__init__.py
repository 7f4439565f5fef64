"""Sunbeam HTTP API."""
