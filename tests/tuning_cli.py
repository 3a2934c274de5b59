"""Run the study CLI with the test-only toy family registered (for subprocess tests):
``python tests/tuning_cli.py search --space family --models toy_net ...``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tuning_toy  # noqa: E402

from keras_convnets.study.__main__ import main  # noqa: E402

if __name__ == "__main__":
    tuning_toy.register()
    sys.exit(main(sys.argv[1:]))
