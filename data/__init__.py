"""data/: the prepare_*.py scripts (run as `python data/prepare_X.py`) and their shared common.py."""
