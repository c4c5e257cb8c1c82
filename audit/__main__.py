"""``python -m audit`` runs the hostaudit command line."""

import sys

from audit.cli import main

sys.exit(main())
