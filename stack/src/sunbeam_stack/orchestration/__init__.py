"""Talking to a running platform: registering the deployment, prewarming a ref, running a flow and waiting for it."""
