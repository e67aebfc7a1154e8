"""Plain ``python`` works: entry points hand themselves to the project's venv.

``python manage.py …`` and ``python scripts/*.py …`` may be typed with any Python 3.11+. When
Django is not importable from it, the entry point re-runs itself, with the same arguments,
under ``.venv/bin/python`` (created by ``make install``). One mechanism for every entry point;
this module imports nothing outside the standard library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
REEXEC_MARK = "TRADINGSTATE_VENV_REEXEC"
EX_USAGE = 64  # sysexits.h: the command was used incorrectly (as ``reconcile``'s)
NOT_UTF8 = (
    "{name}: argument {n} is not valid UTF-8 ({shown}); nothing was done. "
    "Arguments are text: retype it, or check the shell's locale.\n"
)
MISSING = (
    "{name}: Django is not installed for {python} and {venv} is missing; "
    "run `make install` in {root} first.\n"
)


def ensure_project_python(script: str | Path, argv: list[str]) -> None:
    """Return when Django is importable; otherwise exec ``script argv`` under the venv.

    Exits with status 2 and a clear message when there is no venv to hand over to (or the
    venv's own python cannot import Django, which would otherwise loop). First, an argument
    that is not UTF-8 is refused (``refuse_undecodable``).
    """
    refuse_undecodable(Path(script).name, argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        import django  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and not os.environ.get(REEXEC_MARK):
            os.environ[REEXEC_MARK] = "1"
            script = str(Path(script).resolve())
            # a fixed interpreter inside the project, our own script, the caller's argv
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *argv])  # noqa: S606
        sys.stderr.write(
            MISSING.format(
                name=Path(script).name, python=sys.executable, venv=VENV_PYTHON, root=ROOT
            )
        )
        raise SystemExit(2) from None


def refuse_undecodable(name: str, argv: list[str]) -> None:
    """Exit ``EX_USAGE`` naming the first argument that is not UTF-8 text.

    Python hands such bytes over as lone surrogates (``surrogateescape``); no encoder takes
    them, so a reason or an account name holding one failed deep in a write with a
    traceback. Refused at the door of every entry point instead, before anything runs."""
    for n, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            sys.stderr.write(NOT_UTF8.format(name=name, n=n, shown=shown))
            raise SystemExit(EX_USAGE) from None
