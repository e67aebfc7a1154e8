"""The run scripts' supervisor: a stop leaves no process behind, grandchildren included."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import _supervisor  # noqa: E402

from tests.e2e.processes import alive  # noqa: E402

# a child that ignores SIGTERM (as a busy qcluster can), with a worker of its own that
# shares its stdout: before, SIGKILL reached the child only, and the worker lived on,
# holding the pipe open (a reader of the output waited for ever)
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print(worker.pid, flush=True)
time.sleep(600)
"""


def test_stop_kills_a_stubborn_child_and_the_processes_it_started():
    read, write = os.pipe()
    children = []
    try:
        with os.fdopen(write, "w") as out:
            children = [
                subprocess.Popen(
                    [sys.executable, "-c", STUBBORN], stdout=out, start_new_session=True
                )
            ]
        with os.fdopen(read) as pipe:
            worker = int(pipe.readline())
            assert alive(worker)
            started = time.monotonic()
            _supervisor.stop_all(children, grace=1)
            assert children[0].returncode is not None
            deadline = time.monotonic() + 10
            while alive(worker) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not alive(worker)
            assert pipe.read() == ""  # every writer is gone: the reader sees the end
            assert time.monotonic() - started < 10
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


def test_children_are_started_each_in_a_process_group_of_its_own():
    children = _supervisor.start(
        [[sys.executable, "-c", "import time; time.sleep(30)"]], {**os.environ}
    )
    try:
        assert os.getpgid(children[0].pid) == children[0].pid != os.getpgid(0)
    finally:
        _supervisor.stop_all(children, grace=5)
    assert children[0].returncode is not None
