"""Small server-rendered SVG charts for the console (no JavaScript, no CDN): pure functions
from (label, value) pairs to SVG text, every text escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def _fmt(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value):,}"


def bar_chart_svg(
    items: Sequence[tuple[str, float | None]],
    *,
    title: str,
    unit: str = "",
    width: int = 420,
    bar_height: int = 14,
    label_width: int = 170,
    css_class: str = "bar-chart",
) -> str:
    """Horizontal bars, one per item, labelled with its value (``n/a`` for None)."""
    rows = list(items)
    height = max(1, len(rows)) * (bar_height + 6) + 22
    top = max((v for _, v in rows if v is not None), default=0) or 1
    plot = width - label_width - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="12" font-size="11" font-weight="bold" fill="#333">{escape(title)}</text>',
    ]
    if not rows:
        parts.append('<text x="0" y="34" font-size="11" fill="#666">no data</text>')
    for i, (label, value) in enumerate(rows):
        y = 20 + i * (bar_height + 6)
        text = "n/a" if value is None else f"{_fmt(value)}{(' ' + unit) if unit else ''}"
        w = 0 if value is None else max(1.0, plot * value / top)
        parts.append(
            f'<text x="{label_width - 4}" y="{y + bar_height - 3}" font-size="10" '
            f'text-anchor="end" fill="#333">{escape(label[:32])}</text>'
            f'<rect class="bar" x="{label_width}" y="{y}" width="{w:.1f}" height="{bar_height}" '
            f'fill="#417690"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text x="{label_width + w + 4:.1f}" y="{y + bar_height - 3}" font-size="10" '
            f'fill="#333">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart_svg(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 420,
    height: int = 110,
    css_class: str = "column-chart",
) -> str:
    """Vertical columns over time (``items`` oldest first), the first and last label shown."""
    rows = list(items)
    left, bottom, top_pad = 26, 16, 18
    plot_w, plot_h = width - left - 4, height - bottom - top_pad
    top = max((v for _, v in rows), default=0) or 1
    col = plot_w / max(1, len(rows))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="12" font-size="11" font-weight="bold" fill="#333">{escape(title)}</text>',
        f'<rect x="{left}" y="{top_pad}" width="{plot_w}" height="{plot_h}" fill="#f8f8f8" '
        'stroke="#ddd"/>',
        f'<text x="{left - 3}" y="{top_pad + 9}" font-size="9" text-anchor="end" fill="#666">'
        f"{_fmt(top)}</text>",
    ]
    if not rows:
        parts.append(
            f'<text x="{left + 6}" y="{top_pad + plot_h / 2:.0f}" font-size="11" fill="#666">'
            "none in this window</text>"
        )
    for i, (label, value) in enumerate(rows):
        h = plot_h * value / top
        x = left + i * col
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{top_pad + plot_h - h:.1f}" '
            f'width="{max(col - 2, 1):.1f}" height="{h:.1f}" fill="#ba2121">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
        )
    if rows:
        for anchor, (label, _), x in (
            ("start", rows[0], left),
            ("end", rows[-1], left + plot_w),
        ):
            parts.append(
                f'<text x="{x}" y="{height - 3}" font-size="9" text-anchor="{anchor}" '
                f'fill="#666">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
