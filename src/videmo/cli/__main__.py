"""``python -m videmo.cli``, as ``python -m videmo``."""

import sys

from videmo.cli import main

sys.exit(main(sys.argv[1:]))
