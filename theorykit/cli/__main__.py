"""``python -m theorykit.cli``: the same as the ``theorykit`` command."""

import sys

from . import main

sys.exit(main())
