"""`python -m sunbeam_api`: the same as the `sunbeam-api` command."""

from sunbeam_api.main import run

run()
