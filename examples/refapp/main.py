#!/usr/bin/env python3
"""``python3 examples/refapp/main.py …``: the same as ``python -m refapp`` from any directory."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from refapp.cli import main  # noqa: E402

sys.exit(main())
