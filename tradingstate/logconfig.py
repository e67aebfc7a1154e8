"""Log formatting: JSON lines for the file, readable text for the console.

The runbook greps ``data/logs/*.log`` for plain phrases ("Reconciliation found",
"position_mismatch", "Auto-repair", "repairs_applied", "ReconciliationLoop started",
"Application started"). Each JSON line therefore carries the message text verbatim and,
for structured records (``extra={"structured": {...}}``), the structured fields first,
so a discrepancy line starts exactly as the runbook shows it:
``{"type": "position_mismatch", "symbol": "BTC/USDT", ...}``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        structured = getattr(record, "structured", None)
        fields = {k: _jsonable(v) for k, v in structured.items()} if structured else {}
        meta = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
        }
        if structured and not getattr(record, "with_message", False):
            # a discrepancy: the object itself first, exactly as the runbook shows it
            out: dict[str, object] = {
                **fields,
                **{k: v for k, v in meta.items() if k not in fields},
            }
        else:
            out = {**meta, "message": record.getMessage()}
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _jsonable(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def build_logging(*, log_dir: str, log_file: str, level: str, console: bool) -> dict:
    handlers: dict[str, dict] = {
        "file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": f"{log_dir}/{log_file}",
            "formatter": "jsonl",
            "encoding": "utf-8",
            "delay": True,
        },
    }
    if console:
        handlers["console"] = {"class": "logging.StreamHandler", "formatter": "text"}
    names = list(handlers)
    app_logger = {"handlers": names, "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "jsonl": {"()": "tradingstate.logconfig.JsonLinesFormatter"},
            "text": {"format": "%(asctime)s %(levelname)s %(name)s  %(message)s"},
        },
        "handlers": handlers,
        "root": {"handlers": names, "level": "WARNING"},
        "loggers": {
            "tradingstate": app_logger,
            "reconciliation": app_logger,
            "killswitch": app_logger,
            "django_q": {"handlers": names, "level": "WARNING", "propagate": False},
            "ccxt": {"handlers": names, "level": "WARNING", "propagate": False},
        },
    }
