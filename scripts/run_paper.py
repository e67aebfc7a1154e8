#!/usr/bin/env python3
"""Paper trading: restart recovery, then the worker and the console (the runbook's restart).

python scripts/run_paper.py --config configs/paper.toml
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _supervisor import main

if __name__ == "__main__":
    raise SystemExit(main("configs/paper.toml", sys.argv[1:]))
