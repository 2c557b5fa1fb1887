"""``python -m jsma_fast.cli`` (and ``torchrun -m jsma_fast.cli``): the ``jsma-fast`` command."""

import sys

from . import main

sys.exit(main())
