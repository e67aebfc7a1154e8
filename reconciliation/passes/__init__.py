"""The reconciliation pass as a package, one module per step:

- ``context``  PassContext (one pass's identity) and PassOutcome;
- ``fetch``    the exchange's truth and single-order lookups (no transaction open);
- ``reconciliation.diff`` (pure, outside this package) finds the discrepancies;
- ``persist``  the run, discrepancies and repairs in one short transaction;
- ``log``      the runbook's lines, written in one batch when the pass ends;
- ``run``      lease -> fetch -> diff -> persist -> log;
- ``actions``  staff actions: apply a repair, acknowledge;
- ``triggers`` the one way to ask for a pass (queue it, or run it here with a bounded wait).
"""

from reconciliation.passes.actions import (
    ALREADY_CLOSED,
    NOT_REPAIRABLE,
    REPAIR_DEFERRED,
    discrepancy_acknowledge,
    repair_apply,
)
from reconciliation.passes.context import PassContext, PassOutcome, reconciliation_actor
from reconciliation.passes.run import run_reconciliation
from reconciliation.passes.triggers import enqueue_pass, reconciliation_request, wait_budget

__all__ = [
    "ALREADY_CLOSED",
    "NOT_REPAIRABLE",
    "REPAIR_DEFERRED",
    "PassContext",
    "PassOutcome",
    "discrepancy_acknowledge",
    "enqueue_pass",
    "reconciliation_actor",
    "reconciliation_request",
    "repair_apply",
    "run_reconciliation",
    "wait_budget",
]
