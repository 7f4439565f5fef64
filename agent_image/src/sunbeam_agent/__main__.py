"""`python -m sunbeam_agent`: the same as the `sunbeam-agent` command."""

import sys

from sunbeam_agent.host.entrypoint import main

sys.exit(main())
