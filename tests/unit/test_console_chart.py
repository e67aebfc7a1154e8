"""The dashboard's chart: a pure function from run points to SVG (no DB, no JS)."""

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from reconciliation.console import RunPoint, chart_buckets, discrepancy_chart_svg

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> list[ElementTree.Element]:
    root = ElementTree.fromstring(svg)  # noqa: S314 -- also proves the markup is well-formed XML
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]


def test_buckets_keep_the_worst_pass_and_ignore_points_outside_the_window():
    # given
    points = [
        RunPoint(at=NOW - timedelta(minutes=1), discrepancies=2),
        RunPoint(at=NOW - timedelta(minutes=2), discrepancies=5),
        RunPoint(at=NOW - timedelta(minutes=3), discrepancies=0, status="incomplete"),
        RunPoint(at=NOW - timedelta(hours=25), discrepancies=99),  # too old
        RunPoint(at=NOW + timedelta(minutes=1), discrepancies=99),  # in the future
    ]
    # when
    cols = chart_buckets(points, now=NOW, hours=24, buckets=96)
    # then
    assert len(cols) == 96
    last = cols[-1]
    assert (last.passes, last.worst, last.failed) == (3, 5, 1)
    assert sum(c.passes for c in cols) == 3
    assert cols[0].start == NOW - timedelta(hours=24)


def test_svg_has_one_bar_per_bucket_with_passes_scaled_to_the_worst():
    points = [
        RunPoint(at=NOW - timedelta(hours=20), discrepancies=4),
        RunPoint(at=NOW - timedelta(hours=10), discrepancies=2),
        RunPoint(at=NOW - timedelta(hours=1), discrepancies=0),
    ]
    svg = discrepancy_chart_svg(points, now=NOW, width=480, height=90)
    found = bars(svg)
    assert len(found) == 3
    heights = [float(b.get("height")) for b in found]
    assert heights[0] == 2 * heights[1]  # 4 vs 2 discrepancies
    assert heights[2] == 2.0  # a clean pass is a thin green bar
    assert [b.get("fill") for b in found] == ["#ba2121", "#ba2121", "#3c9a5f"]
    assert "worst pass 4 discrepancies" in svg
    assert "<script" not in svg and "http://" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_svg_with_no_runs_is_an_empty_frame():
    svg = discrepancy_chart_svg([], now=NOW)
    assert bars(svg) == []
    assert "max 0" in svg


def test_failed_passes_are_marked():
    svg = discrepancy_chart_svg(
        [RunPoint(at=NOW - timedelta(minutes=5), discrepancies=1, status="failed")], now=NOW
    )
    root = ElementTree.fromstring(svg)  # noqa: S314 -- our own markup
    assert [r for r in root.iter(f"{SVG}rect") if r.get("class") == "failed"]
    assert "1 failed/incomplete" in svg


def test_label_is_escaped():
    svg = discrepancy_chart_svg([], now=NOW, label='<script>alert("x")</script>')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    ElementTree.fromstring(svg)  # noqa: S314 -- our own markup
