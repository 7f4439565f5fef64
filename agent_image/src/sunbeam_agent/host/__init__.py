"""A host's agent: the `sunbeam` worker type, its container entrypoint, env hooks, host id."""
