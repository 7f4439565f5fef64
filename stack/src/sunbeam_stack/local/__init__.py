"""The stack as local processes: starting and stopping them, their ports, state files, API key and console."""
