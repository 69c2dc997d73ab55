"""``python -m nas`` (also used by ``torchrun -m nas``)."""

import sys

from nas.cli import main

sys.exit(main())
