"""``python -m hubtransfer.cli``: the ``hubtransfer`` command (the local Hub starts its server process this way)."""

import sys

from hubtransfer.cli import main

sys.exit(main())
