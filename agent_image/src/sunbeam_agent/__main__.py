"""`python -m sunbeam_agent`: the same as the `sunbeam-agent` command."""

import sys

from sunbeam_agent.entrypoint import main

sys.exit(main())
