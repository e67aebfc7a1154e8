#!/usr/bin/env python3
"""Live trading: restart recovery, then the worker and the console (the runbook's restart).

python scripts/run_live.py --config configs/live.toml
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _supervisor import main

if __name__ == "__main__":
    raise SystemExit(main("configs/live.toml", sys.argv[1:]))
