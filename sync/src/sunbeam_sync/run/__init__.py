"""Running git and uv: processes, the uv driver, credentials, retries, the log and timings."""
