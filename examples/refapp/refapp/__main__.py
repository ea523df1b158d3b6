"""``python -m refapp``: the command line (see ``refapp.cli``)."""

import sys

from refapp.cli import main

sys.exit(main())
