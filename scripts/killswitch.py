#!/usr/bin/env python3
"""The runbook's kill switch entry point; the same flags as ``manage.py killswitch``.

    python scripts/killswitch.py --activate --reason "Manual position correction in progress"
    python scripts/killswitch.py --status
    python scripts/killswitch.py --deactivate

Runs with the system python or the project's venv (``tradingstate.venv``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tradingstate.venv import ensure_project_python


def main(argv: list[str]) -> None:
    ensure_project_python(__file__, argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingstate.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["killswitch.py", "killswitch", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
