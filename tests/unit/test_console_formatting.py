"""Numbers and times as traders read them (issue 18 item 4), the analytics' percentile and
the console's small SVG charts: pure code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from reconciliation.analytics import percentile
from tradingstate.amounts import amount_display
from tradingstate.web.console.charts import bar_chart_svg, column_chart_svg

D = Decimal


@pytest.mark.parametrize(
    ("value", "step", "shown"),
    [
        (D("0.080000000000000000"), None, "0.08"),
        (D("60250.000000000000000000"), None, "60250"),
        (D("0E-18"), None, "0"),
        (D("-0.050000000000000000"), None, "-0.05"),
        (D("0.080000000000000000"), D("0.001"), "0.080"),  # the instrument's precision
        (D("60250.000000000000000000"), D("0.1"), "60250.0"),
        (D("60250.5"), D("0.50000000"), "60250.5"),
        (D("0.0801"), D("0.01"), "0.0801"),  # never rounds away a digit the value has
        (D("12"), D("1"), "12"),
        (D("12"), D("0"), "12"),  # step unknown (0): trailing zeros dropped
    ],
)
def test_amount_display(value, step, shown):
    assert amount_display(value, step) == shown


def test_amount_display_none():
    assert amount_display(None) is None


def test_unpad_numbers_in_recorded_text():
    from tradingstate.amounts import unpad_numbers

    old = "abc123 buy 0.010000000000000000 BTC/USDT [submitted] 60250.000000000000000000"
    assert unpad_numbers(old) == "abc123 buy 0.01 BTC/USDT [submitted] 60250"
    assert unpad_numbers("paper-demo:BTC/USDT -0.50") == "paper-demo:BTC/USDT -0.5"
    assert unpad_numbers("v1.2.3 and 10") == "v1.2.3 and 10"  # not a number: untouched


def test_qty_filter_keeps_the_full_value_one_hover_away():
    from tradingstate.templatetags.money import qty

    html = qty(D("0.080000000000000000"), D("0.001"))
    assert html == '<span class="num" title="0.08">0.080</span>'
    assert qty(None) == "n/a"
    assert qty("0.05") == '<span class="num" title="0.05">0.05</span>'  # audit snapshot text


def test_money_filter_rounds_computed_figures_to_cents():
    from tradingstate.templatetags.money import money

    assert money(D("-743827153.79938266175")) == (
        '<span class="num" title="-743827153.79938266175">-743827153.80</span>'
    )
    assert money(D("0.005")) == '<span class="num" title="0.005">0.00</span>'  # half-even
    assert money(D("12")) == '<span class="num" title="12">12.00</span>'
    assert money(None) == "n/a"


def test_times_have_seconds_and_offset_and_ages_read_naturally(settings):
    from tradingstate.templatetags.money import age_str, ago, moment_str

    settings.TIME_ZONE = "UTC"
    moment = datetime(2026, 12, 6, 14, 3, 12, tzinfo=UTC)
    assert moment_str(moment) == "2026-12-06 14:03:12 +0000"
    assert moment_str(None) == "—"
    assert [age_str(s) for s in (None, 0, 5.9, 119, 120, 7199, 7200, 172800)] == [
        "never", "0 s ago", "5 s ago", "119 s ago", "2 min ago", "119 min ago", "2 h ago",
        "2 d ago",
    ]  # fmt: skip
    assert ago(moment, moment + timedelta(seconds=42)) == "42 s ago"


def test_admin_datetime_format_has_seconds_and_offset(settings):
    from django.utils import formats, timezone

    settings.TIME_ZONE = "UTC"
    moment = datetime(2026, 12, 6, 13, 36, 5, tzinfo=UTC)
    text = formats.localize(timezone.template_localtime(moment))
    assert text == "2026-12-06 13:36:05 +0000"  # was "Dec. 6, 2026, 1:36 p.m."


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_bar_chart_escapes_and_labels_values():
    svg = bar_chart_svg([("<script>", 2.0), ("b", None), ("c", 4.5)], title="T & x", unit="s")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "T &amp; x" in svg
    assert svg.count('class="bar"') == 3 and ">n/a<" in svg and ">4.5 s<" in svg
    assert "no data" in bar_chart_svg([], title="empty")


def test_column_chart_draws_one_column_per_day():
    svg = column_chart_svg([("2026-12-01", 1), ("2026-12-02", 3)], title="trend")
    assert svg.count('class="bar"') == 2 and "2026-12-01" in svg and "2026-12-02" in svg
    assert "none in this window" in column_chart_svg([], title="trend")


def test_the_scrubbers_moment():
    from tradingstate.web.console.pages import AT_INVALID, parse_moment

    now = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    assert parse_moment(None, now=now) == (now, "")
    assert parse_moment("1765029792", now=now) == (datetime(2025, 12, 6, 14, 3, 12, tzinfo=UTC), "")
    assert parse_moment("2026-12-06T14:03:12Z", now=now)[0] == datetime(
        2026, 12, 6, 14, 3, 12, tzinfo=UTC
    )
    assert parse_moment("2026-12-06 14:03:12", now=now)[0].tzinfo == UTC  # naive: UTC
    for bad in ("yesterday", "2026-13-45T00:00:00Z", "9" * 20):
        assert parse_moment(bad, now=now) == (now, AT_INVALID)
