"""Shared by the bench scripts: a dedicated, throw-away database and Django set-up.

Never the dev database: with ``DATABASE_URL`` pointing at PostgreSQL the scripts create
``<name>_bench`` (dropped first if a crashed run left it, dropped again at the end); on
SQLite they use a file in a temporary directory. Logs go to a temporary directory too.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_SCHEMES = ("postgres://", "postgresql://")


def is_postgres(url: str) -> bool:
    return url.startswith(PG_SCHEMES)


def _with_db_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _pg_admin(url: str):
    import psycopg

    parts = urlsplit(url)
    conn = psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    )
    return conn


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    """Yield the URL of a fresh, empty bench database; drop it afterwards.

    Also points ``DATABASE_URL`` and ``TRADINGSTATE_LOG_DIR`` (a temp dir) at it for this
    process and its children.
    """
    url = os.environ.get("DATABASE_URL", "")
    tmp = tempfile.TemporaryDirectory(prefix="ts-bench-")
    old = {k: os.environ.get(k) for k in ("DATABASE_URL", "TRADINGSTATE_LOG_DIR")}
    os.environ["TRADINGSTATE_LOG_DIR"] = str(Path(tmp.name) / "logs")
    try:
        if is_postgres(url):
            base = urlsplit(url).path.lstrip("/") or "tradingstate"
            name = f"{base}_bench"  # never the configured database itself
            bench_url = _with_db_name(url, name)
            with _pg_admin(url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            os.environ["DATABASE_URL"] = bench_url
            try:
                yield bench_url
            finally:
                with contextlib.suppress(Exception):
                    from django.db import connections

                    connections.close_all()
                with _pg_admin(url) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            bench_url = f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
            os.environ["DATABASE_URL"] = bench_url
            yield bench_url
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        tmp.cleanup()


def django_setup(settings_module: str = "tradingstate.settings") -> None:
    """Configure Django on the current ``DATABASE_URL``; migrate; quiet the console log.

    The product's logging stays as configured (the JSON-lines file gets every line the
    runbook greps); only the console handler's stream is sent to /dev/null so a bench's
    stdout/stderr stays one line per case. Formatting and writing still happen.
    """
    import logging

    import django
    from django.core.management import call_command

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    devnull = open(os.devnull, "w")  # noqa: SIM115  (lives as long as the process)
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if type(handler) is logging.StreamHandler:
                handler.setStream(devnull)


def machine_line() -> str:
    """cores, memory and database version, for RESULTS.md."""
    cores = os.cpu_count() or 0
    mem = ""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return (
        f"cores={cores} memory={mem or '?'} cpu={_cpu_model()} python={platform.python_version()} "
        f"database={database_version()}"
    )


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return '"' + line.split(":", 1)[1].strip() + '"'
    return platform.machine()


def database_version() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if is_postgres(url):
        with contextlib.suppress(Exception), _pg_admin(url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f'"PostgreSQL {row[0]}"'
        return "PostgreSQL"
    import sqlite3

    return f'"SQLite {sqlite3.sqlite_version}"'
