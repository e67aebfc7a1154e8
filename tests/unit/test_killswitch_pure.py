from datetime import UTC, datetime

from killswitch.context_processors import Banner
from killswitch.management.commands.killswitch import status_lines
from killswitch.selectors import HaltedAccount, KillSwitchStatus
from killswitch.services import Decision, _one_line


def test_status_lines_inactive():
    assert status_lines(KillSwitchStatus(active=False)) == ["Kill switch: INACTIVE"]


def test_status_lines_active_with_halted_accounts():
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    status = KillSwitchStatus(
        active=True,
        reason="why",
        activated_by="cli:ops",
        activated_at=at,
        halted_accounts=[HaltedAccount("a", "venue", "bot", at)],
    )
    lines = status_lines(status)
    assert lines[0] == "Kill switch: ACTIVE (reason: why)"
    assert lines[-1] == "Account a: HALTED (reason: venue)"


def test_decision_is_truthy_only_when_allowed():
    assert Decision(allowed=True)
    assert not Decision(allowed=False, reason="x", scope="global")


def test_reason_is_one_log_line():
    assert _one_line("a\r\nb\tc ") == "a b c"


def test_empty_banner_is_falsy():
    assert not Banner([]) and Banner(["x"])
