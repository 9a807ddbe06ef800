"""``python -m remotesam.bench``: the same program as ``remotesam-bench`` (use it with torchrun)."""

import sys

from remotesam.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
