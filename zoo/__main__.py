"""``python -m zoo``: see zoo/cli.py."""

import os
import sys

# TensorFlow's C++ start-up lines (CPU features, no CUDA driver) are noise on a terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from zoo.cli import main  # after the environment is set: TensorFlow reads it when it loads

sys.exit(main())
