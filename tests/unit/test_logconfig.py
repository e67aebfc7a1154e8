import json
import logging

from tradingstate.logconfig import JsonLinesFormatter


def make_record(msg, **extra):
    record = logging.LogRecord("reconciliation", logging.WARNING, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_plain_record_keeps_message_text():
    line = JsonLinesFormatter().format(make_record("Reconciliation found 3 discrepancies"))
    data = json.loads(line)
    assert data["message"] == "Reconciliation found 3 discrepancies"
    assert data["level"] == "WARNING" and data["logger"] == "reconciliation"


def test_structured_record_starts_with_runbook_fields():
    fields = {
        "type": "position_mismatch",
        "symbol": "BTC/USDT",
        "local_qty": "0.05",
        "exchange_qty": "0.08",
        "detail": "Quantity mismatch",
    }
    line = JsonLinesFormatter().format(make_record(json.dumps(fields), structured=fields))
    assert line.startswith(
        '{"type": "position_mismatch", "symbol": "BTC/USDT", "local_qty": "0.05", '
        '"exchange_qty": "0.08", "detail": "Quantity mismatch"'
    )
