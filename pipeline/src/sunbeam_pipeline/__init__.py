"""Sunbeam pipeline."""
