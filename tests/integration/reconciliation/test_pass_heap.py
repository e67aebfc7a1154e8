"""After a process's first pass its long-lived heap is frozen (gc.freeze): full collections
no longer walk the startup objects in every few passes."""

from __future__ import annotations

import gc

import pytest

from reconciliation.passes import run as pass_run
from reconciliation.passes import run_reconciliation
from tests.factories import AccountFactory
from tests.fakes.memory import MemoryExchange


@pytest.mark.django_db
def test_the_first_pass_freezes_the_heap_and_later_garbage_is_still_collected(monkeypatch):
    # given: a process whose heap is not frozen yet
    monkeypatch.setattr(pass_run, "_heap", {"frozen": False}, raising=False)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    # when: a pass
    run = run_reconciliation(AccountFactory(name="heap"), "manual", adapter=MemoryExchange())
    # then: what the process held is frozen, once
    assert run.status == "completed"
    frozen = gc.get_freeze_count()
    assert frozen > 1000
    run_reconciliation(AccountFactory(name="heap-2"), "manual", adapter=MemoryExchange())
    assert gc.get_freeze_count() <= frozen  # not frozen again (freed ones leave the count)
    # and a cycle made afterwards is collected as usual
    cycle: list = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
