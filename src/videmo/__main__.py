import sys

from videmo.cli import main

sys.exit(main())
