"""``[worker] nice``: a process that runs passes lowers its CPU priority below the bots' API
once, the first time it runs one, and never raises it. Each case runs in its own process
(lowering the test runner's own priority could not be undone)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import os, django
django.setup()
from reconciliation.priority import worker_priority_apply
before = os.getpriority(os.PRIO_PROCESS, 0)
if {through_task}:
    from reconciliation.tasks import reconcile_account_task
    try:
        reconcile_account_task(10**9, "schedule")
    except Exception:
        pass  # no database here: the priority is set before the first query
    first = os.getpriority(os.PRIO_PROCESS, 0)
else:
    first = worker_priority_apply()
print(before, first, worker_priority_apply())
"""


def _probe(nice: str, start_at: int = 0, through_task: bool = False) -> list[int]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradingstate.settings",
        "TRADINGSTATE_WORKER__NICE": nice,
        "DATABASE_URL": "sqlite:////nonexistent-dir/none.sqlite3",
    }

    def start():
        if start_at:
            os.setpriority(os.PRIO_PROCESS, 0, start_at)

    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(through_task=through_task)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=start,
        check=True,
    )
    return [int(x) for x in out.stdout.split()[-3:]]


def test_the_priority_is_lowered_to_the_configured_niceness():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    before, first, again = _probe("12")
    assert before == base
    assert first == again == max(base, 12)


def test_a_pass_task_lowers_it_before_its_first_query():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    _before, first, _again = _probe("9", through_task=True)
    assert first == max(base, 9)


def test_it_is_never_raised_and_zero_leaves_it_alone():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert _probe("5", start_at=max(base, 15))[1:] == [max(base, 15)] * 2
    assert _probe("0")[1:] == [base, base]


THREADS = """
import os, threading, django
django.setup()
from reconciliation.priority import worker_priority_apply
seen = {}
def read(key):
    seen[key] = os.getpriority(os.PRIO_PROCESS, 0)
early = threading.Thread(target=lambda: (read("early_before"), ev.wait(), read("early_after")))
ev = threading.Event()
early.start()
worker_priority_apply()  # the worker's main thread, before it starts pass threads
late = threading.Thread(target=read, args=("late",))
late.start(); late.join()
ev.set(); early.join()
print(seen["early_before"], seen["early_after"], seen["late"])
"""


def test_pass_threads_started_after_it_inherit_it():
    # Linux keeps a niceness per thread: a thread started before keeps its own, so the
    # worker applies it before starting pass threads (and each pass applies it again)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tradingstate.settings"}
    env["TRADINGSTATE_WORKER__NICE"] = "11"
    out = subprocess.run(
        [sys.executable, "-c", THREADS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    early_before, early_after, late = (int(x) for x in out.stdout.split()[-3:])
    assert early_before == early_after == base
    assert late == max(base, 11)


def test_the_suite_runner_keeps_its_priority():
    # tests/conftest.py sets [worker] nice = 0 for the runner: passes run in-process by other
    # tests must not lower the whole suite's priority for good
    from reconciliation.priority import worker_priority_apply

    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert worker_priority_apply() == base
    assert os.environ["TRADINGSTATE_WORKER__NICE"] == "0"
