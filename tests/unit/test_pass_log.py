"""The pass's log lines are held until the pass ends, then written in one batch per handler,
unchanged in text and order (the runbook greps them)."""

import io
import logging
from logging.handlers import WatchedFileHandler

import pytest

from reconciliation.passes.log import PassLog
from tradingstate.logconfig import JsonLinesFormatter


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)

    def flush(self):
        self.flushes += 1


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def logger():
    log = logging.getLogger("test-pass-log")
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    log.handlers.clear()


def _lines(out: PassLog):
    out.warning(
        "Reconciliation found 2 discrepancies (orders=1 positions=1 balances=0 repairs=1)",
        extra={"structured": {"account": "a", "repairs_applied": 1}, "with_message": True},
    )
    detail = {"type": "position_mismatch", "symbol": "BTC/USDT", "local_qty": "0.05"}
    out.warning('{"type": "position_mismatch"}', extra={"structured": detail})
    out.info("Auto-repair applied: %s %s %s", "position_mismatch", "BTC/USDT", "0.05 -> 0.08")


def test_lines_wait_for_flush_then_go_out_in_one_write(logger):
    # given: a stream handler counting writes, and a pass's three lines
    stream = CountingStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    logger.addHandler(handler)
    out = PassLog(logger)

    # when: the pass logs them
    _lines(out)

    # then: nothing is written until the pass ends ...
    assert stream.getvalue() == "" and stream.writes == 0
    # ... and then every line, in order, with one write and one flush
    out.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert '"message": "Reconciliation found 2 discrepancies' in lines[0]
    assert lines[1].startswith('{"type": "position_mismatch", "symbol": "BTC/USDT"')
    assert "Auto-repair applied: position_mismatch BTC/USDT 0.05 -> 0.08" in lines[2]
    assert (stream.writes, stream.flushes) == (1, 1)


def test_batched_text_equals_record_by_record_text(logger, tmp_path):
    # given: the same lines through the logger directly and through PassLog
    direct, batched = tmp_path / "direct.log", tmp_path / "batched.log"
    for path in (direct, batched):
        handler = WatchedFileHandler(path, delay=True, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s  %(message)s"))
        logger.handlers[:] = [handler]
        out = PassLog(logger) if path is batched else None
        if out is None:
            _lines(_Direct(logger))
        else:
            _lines(out)
            out.flush()
        handler.close()

    # then: the file holds exactly the same text
    assert batched.read_text() == direct.read_text()
    assert len(batched.read_text().splitlines()) == 3


def test_levels_and_other_handlers_are_honoured(logger):
    # given: a WARNING-only stream handler and a plain (non-stream) handler
    stream = CountingStream()
    warnings_only = logging.StreamHandler(stream)
    warnings_only.setLevel(logging.WARNING)
    every = ListHandler()
    logger.handlers[:] = [warnings_only, every]
    out = PassLog(logger)

    # when
    _lines(out)
    out.flush()

    # then: the info line skips the WARNING handler; the other handler gets each record
    assert len(stream.getvalue().splitlines()) == 2
    assert [r.levelno for r in every.records] == [logging.WARNING, logging.WARNING, logging.INFO]


def test_a_disabled_level_records_nothing(logger):
    logger.setLevel(logging.WARNING)
    every = ListHandler()
    logger.handlers[:] = [every]
    out = PassLog(logger)
    _lines(out)
    out.flush()
    assert len(every.records) == 2


class _Direct:
    """The logger itself, with PassLog's call shape."""

    def __init__(self, logger):
        self.logger = logger

    def warning(self, msg, *args, extra=None):
        self.logger.warning(msg, *args, extra=extra)

    def info(self, msg, *args, extra=None):
        self.logger.info(msg, *args, extra=extra)
