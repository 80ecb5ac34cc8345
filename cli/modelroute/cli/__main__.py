"""`python -m modelroute.cli`."""

import sys

from modelroute.cli.main import main

sys.exit(main())
