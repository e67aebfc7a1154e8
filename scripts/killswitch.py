#!/usr/bin/env python3
"""The runbook's kill switch entry point; the same flags as ``manage.py killswitch``.

    python scripts/killswitch.py --activate --reason "Manual position correction in progress"
    python scripts/killswitch.py --status
    python scripts/killswitch.py --deactivate

Runs with the system python or the project's venv: if Django is not importable it re-runs
itself with ``.venv/bin/python``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
REEXEC_MARK = "TRADINGSTATE_KILLSWITCH_REEXEC"


def main(argv: list[str]) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingstate.settings")
    try:
        import django  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and not os.environ.get(REEXEC_MARK):
            os.environ[REEXEC_MARK] = "1"
            # fixed interpreter path inside the project, our own script, the caller's argv
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *argv])  # noqa: S606
        sys.stderr.write(
            "killswitch: Django is not installed for this python and "
            f"{VENV_PYTHON} is missing; run `make install` first.\n"
        )
        raise SystemExit(2) from None
    from django.core.management import execute_from_command_line

    execute_from_command_line(["killswitch.py", "killswitch", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
