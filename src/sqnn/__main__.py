"""`python -m sqnn` runs the command line."""

import sys

from sqnn.cli import main

sys.exit(main())
