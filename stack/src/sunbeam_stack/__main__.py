"""`python -m sunbeam_stack`: the same as the `sunbeam` command."""

import sys

from sunbeam_stack.cli import main

sys.exit(main())
