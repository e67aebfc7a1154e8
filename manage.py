#!/usr/bin/env python
"""Django's command-line utility for tradingstate.

Works with plain ``python`` after ``make install``: when Django is not importable, it re-runs
itself under the project's venv (``tradingstate.venv``).
"""

import os
import sys

from tradingstate.venv import ensure_project_python


def main() -> None:
    ensure_project_python(__file__, sys.argv[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingstate.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
