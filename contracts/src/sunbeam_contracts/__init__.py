"""The names and rules Sunbeam's parts agree on (docs/contracts.md), with no dependencies."""
