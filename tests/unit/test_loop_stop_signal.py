"""`reconcile --loop` stops on SIGTERM/SIGINT whatever its main thread is doing when the
signal lands (a CI run hung 30 s after SIGTERM)."""

import signal
import threading

from reconciliation.management.commands.reconcile import stop_handler


def test_the_handler_does_not_wait_on_the_lock_its_own_thread_holds():
    # the handler runs in the thread the signal interrupted; that thread may be inside
    # stop.wait(), holding the event's lock before it blocks. Event.set() there waits on
    # its own thread forever (the handler was `lambda *_: stop.set()`).
    stop = threading.Event()
    handler = stop_handler(stop)
    returned = threading.Event()

    def interrupted_inside_wait():
        with stop._cond:  # where Event.wait holds it
            handler(signal.SIGTERM, None)
            returned.set()

    thread = threading.Thread(target=interrupted_inside_wait, daemon=True)
    thread.start()
    assert returned.wait(5), "the signal handler waited on its own thread's lock"
    assert stop.wait(5), "the loop was never told to stop"


def test_the_handler_stops_a_waiting_loop():
    stop = threading.Event()
    waiter = threading.Thread(target=stop.wait, args=(30,), daemon=True)
    waiter.start()
    stop_handler(stop)(signal.SIGINT, None)
    waiter.join(5)
    assert stop.is_set() and not waiter.is_alive()
