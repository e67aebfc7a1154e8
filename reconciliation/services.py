"""Reconciliation's services (its writes), as other modules call them: the pass, the one
way to ask for it, and the staff actions on its discrepancies. The implementation lives in
``reconciliation/passes/``, one module per step."""

from reconciliation.passes import (
    ALREADY_CLOSED,
    NOT_REPAIRABLE,
    REPAIR_DEFERRED,
    PassContext,
    PassOutcome,
    discrepancy_acknowledge,
    reconciliation_actor,
    reconciliation_request,
    repair_apply,
    run_reconciliation,
    wait_budget,
)

__all__ = [
    "ALREADY_CLOSED",
    "NOT_REPAIRABLE",
    "REPAIR_DEFERRED",
    "PassContext",
    "PassOutcome",
    "discrepancy_acknowledge",
    "reconciliation_actor",
    "reconciliation_request",
    "repair_apply",
    "run_reconciliation",
    "wait_budget",
]
