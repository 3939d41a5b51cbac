"""``python -m tempodb.cli``."""

import sys

from tempodb.cli import main

sys.exit(main())
