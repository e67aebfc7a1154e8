"""The reconciliation workers' CPU priority: below the bots' API.

A pass is throughput work (thousands of rows, every 15 s); a bot's request is latency work
(a few statements, before every order). On a host that runs both, a pass that takes a core
must not make registrations wait for it: ``[worker] nice`` (default 10; 0 keeps the
scheduler's default) lowers the priority of the threads that run passes. The pass then
takes longer while bots are busy, and as long as before when they are not. Lowering a
priority needs no privilege; raising it back does, so a thread never goes above what it was
started with.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

log = logging.getLogger("reconciliation")


def worker_priority_apply() -> int:
    """Lower the calling thread's priority to ``[worker] nice`` (never raise it); returns
    the niceness now in force. On Linux a niceness belongs to a thread, and a new thread
    starts with its creator's: call it in the worker's main thread before it starts pass
    threads, and in each pass (one system call when already there)."""
    wanted = settings.TRADINGSTATE.worker.nice
    if wanted > os.getpriority(os.PRIO_PROCESS, 0):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, wanted)
        except OSError as exc:  # a sandbox may refuse even this: run as we are
            log.warning("Could not lower the worker's priority to %s: %s", wanted, exc)
    return os.getpriority(os.PRIO_PROCESS, 0)
