"""``python -m remotesam.train`` (and ``torchrun -m remotesam.train``) = ``remotesam-train``."""

import sys

from .cli import main

sys.exit(main())
