"""``python -m serving.cli``: the ``trueframe`` command line."""

import sys

from serving.cli import main

sys.exit(main())
