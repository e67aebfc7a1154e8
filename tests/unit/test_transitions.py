import itertools

import pytest

from tradingstate import transitions as t

LEGAL = {
    ("pending", "submitted"),
    ("pending", "rejected"),
    ("pending", "cancelled"),
    ("submitted", "partially_filled"),
    ("submitted", "filled"),
    ("submitted", "cancelled"),
    ("submitted", "rejected"),
    ("submitted", "expired"),
    ("partially_filled", "partially_filled"),
    ("partially_filled", "filled"),
    ("partially_filled", "cancelled"),
}


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(t.STATUSES, repeat=2)))
def test_every_status_pair(frm, to):
    # given the contract table of DESIGN §3, when asked, then exactly the listed moves are legal
    assert t.can_transition(frm, to) is ((frm, to) in LEGAL)


def test_terminal_states_have_no_exit():
    for status in t.TERMINAL:
        assert t.TRANSITIONS[status] == frozenset()
    assert set(t.STATUSES) == t.ACTIVE | t.TERMINAL


def test_unknown_status_is_never_legal():
    assert not t.can_transition("bogus", "submitted")
    assert not t.can_transition("pending", "bogus")


@pytest.mark.parametrize(
    ("frm", "to", "path"),
    [
        ("pending", "filled", ["submitted", "filled"]),
        ("pending", "partially_filled", ["submitted", "partially_filled"]),
        ("pending", "expired", ["submitted", "expired"]),
        ("submitted", "cancelled", ["cancelled"]),
        ("partially_filled", "partially_filled", []),
        ("filled", "cancelled", None),
        ("partially_filled", "expired", None),
    ],
)
def test_transition_path(frm, to, path):
    assert t.transition_path(frm, to) == path
    if path:
        chain = [frm, *path]
        assert all(t.can_transition(a, b) for a, b in itertools.pairwise(chain))
