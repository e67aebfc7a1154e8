"""Reconciliation's HTTP doors: runs (list, trigger) and discrepancies (list)."""
