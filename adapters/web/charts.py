"""The trend charts as server-rendered SVG: no script, no chart library.

Each chart is readable without colour: every series has a pattern as well as a colour
(Okabe and Ito's palette, told apart by most colour-blind readers too), a legend in words,
and its numbers written on or beside the marks. Each is an `role="img"` with a `<title>` and
`<desc>` saying what it shows, and carries its numbers as `data-` attributes on stable ids,
for browser tests; the page puts a table of the same numbers below each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from math import ceil, log10

from bot.use_cases import KIND_LABELS, KINDS, CitedSection, Trends, WeekCounts


@dataclass(frozen=True)
class SeriesStyle:
    colour: str
    #: Drawn over the colour so the series differ in shape as well ("" for plain).
    pattern: str
    #: The pattern's name in words, for the legend's text alternative.
    described: str


STYLES = {
    "from_policy": SeriesStyle("#0072B2", "", "solid"),
    "reviewed": SeriesStyle("#009E73", "diagonal", "diagonal stripes"),
    "uncertain": SeriesStyle("#E69F00", "dots", "dots"),
    "not_covered": SeriesStyle("#D55E00", "cross", "cross-hatched"),
}
INK = "#1a1a1a"
GRID = "#c8c8c8"
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round axis values from 0 up to at least `maximum` (1, 2 or 5 times a power of ten)."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    power = 10 ** int(log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    top = ceil(maximum / step) * step
    return [float(i * step) for i in range(int(top / step) + 1)]


def _number(value: float) -> str:
    return f"{value:g}"


def _pattern_defs(prefix: str) -> str:
    """One `<pattern>` per patterned series: white marks over the series' colour."""
    parts = []
    for kind, style in STYLES.items():
        marks = {
            "diagonal": '<path d="M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4" stroke="#fff" '
            'stroke-width="1.6"/>',
            "dots": '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
            "cross": '<path d="M0,0 L8,8 M8,0 L0,8" stroke="#fff" stroke-width="1.2"/>',
        }.get(style.pattern, "")
        parts.append(
            f'<pattern id="{prefix}-{kind}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{style.colour}"/>{marks}</pattern>'
        )
    return "<defs>" + "".join(parts) + "</defs>"


def _open_svg(chart_id: str, width: int, height: int, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart_id}" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" aria-label="{escape(title)}" '
        f'{FONT} font-size="12" fill="{INK}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
    )


def _week_label(week: WeekCounts) -> str:
    return f"{week.monday:%d %b}".lstrip("0")


def weekly_description(weeks: Sequence[WeekCounts]) -> str:
    """The weekly chart in one paragraph of words, for its `<desc>`."""
    if not weeks:
        return "No weeks in the range."
    total = sum(w.asked for w in weeks)
    busiest = max(weeks, key=lambda w: w.asked)
    by_kind = ", ".join(f"{sum(w.count(k) for w in weeks)} {KIND_LABELS[k].lower()}" for k in KINDS)
    return (
        f"{len(weeks)} weeks from {weeks[0].week} to {weeks[-1].week}: {total} questions "
        f"({by_kind}). Busiest week {busiest.week} with {busiest.asked}."
    )


def weekly_chart(weeks: Sequence[WeekCounts], *, chart_id: str = "chart-weekly") -> str:
    """Questions per week as stacked bars of the four ways they were answered."""
    left, right, top, legend_height, bottom = 48, 16, 24, 44, 36
    slot = max(14, min(56, 720 // max(1, len(weeks))))
    plot_width = slot * len(weeks)
    width = left + plot_width + right
    plot_height = 220
    height = top + plot_height + bottom + legend_height
    ticks = nice_ticks(max((w.asked for w in weeks), default=0))
    scale = plot_height / ticks[-1]
    base = top + plot_height
    out = [
        _open_svg(
            chart_id,
            max(width, 560),
            height,
            "Questions per week, by how they were answered",
            weekly_description(weeks),
        ),
        _pattern_defs(chart_id),
    ]
    for tick in ticks:
        y = base - tick * scale
        out.append(
            f'<line x1="{left}" x2="{left + plot_width}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>'
        )
    label_every = max(1, ceil(len(weeks) * 44 / max(plot_width, 1)))
    bar = slot * 0.7
    for index, week in enumerate(weeks):
        x = left + index * slot + (slot - bar) / 2
        data = " ".join(f'data-{k.replace("_", "-")}="{week.count(k)}"' for k in KINDS)
        out.append(
            f'<g class="week" id="{chart_id}-{week.week}" data-week="{week.week}" '
            f'data-asked="{week.asked}" {data}>'
            f"<title>{escape(week.week)}: {week.asked} asked; "
            + "; ".join(f"{week.count(k)} {KIND_LABELS[k].lower()}" for k in KINDS)
            + "</title>"
        )
        y = float(base)
        for kind in KINDS:
            value = week.count(kind)
            if not value:
                continue
            h = value * scale
            y -= h
            out.append(
                f'<rect class="segment" data-kind="{kind}" data-count="{value}" x="{x:.1f}" '
                f'y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="url(#{chart_id}-{kind})" '
                f'stroke="#fff" stroke-width="0.5"/>'
            )
            if h >= 15 and bar >= 16:
                # On a white box, so it reads over any pattern.
                cx, cy = x + bar / 2, y + h / 2
                out.append(
                    f'<rect x="{cx - 9:.1f}" y="{cy - 7:.1f}" width="18" height="13" rx="2" '
                    f'fill="#fff" opacity="0.9"/>'
                    f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" '
                    f'font-size="10">{value}</text>'
                )
        # Zero too: an empty week is said, not left for the reader to infer.
        out.append(
            f'<text class="total" x="{x + bar / 2:.1f}" y="{y - 4:.1f}" '
            f'text-anchor="middle" font-weight="bold">{week.asked}</text>'
        )
        if index % label_every == 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                f'font-size="10">{escape(_week_label(week))}</text>'
            )
        out.append("</g>")
    out.append(
        f'<line x1="{left}" x2="{left + plot_width}" y1="{base}" y2="{base}" stroke="{INK}"/>'
        f'<text x="{left}" y="{base + 30}" font-size="10">Weeks starting (Monday, UTC)</text>'
    )
    out.append(_legend(chart_id, left, base + bottom + 6))
    out.append("</svg>")
    return "".join(out)


def _legend(chart_id: str, x: int, y: int) -> str:
    out = [f'<g class="legend" transform="translate({x},{y})">']
    column = 0
    row = 0
    for kind in KINDS:
        style = STYLES[kind]
        dx, dy = column * 250, row * 20
        out.append(
            f'<rect x="{dx}" y="{dy}" width="14" height="14" fill="url(#{chart_id}-{kind})" '
            f'stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="{dx + 20}" y="{dy + 11}">{escape(KIND_LABELS[kind])} '
            f"({style.described})</text>"
        )
        column += 1
        if column == 2:
            column, row = 0, row + 1
    out.append("</g>")
    return "".join(out)


def rate_chart(weeks: Sequence[WeekCounts], *, chart_id: str = "chart-rate") -> str:
    """The answered rate per week as a line, each point labelled with its percentage; a week
    nobody asked in has no rate and breaks the line."""
    left, right, top, bottom = 48, 16, 20, 40
    slot = max(14, min(56, 720 // max(1, len(weeks))))
    plot_width = slot * len(weeks)
    plot_height = 160
    height = top + plot_height + bottom
    base = top + plot_height
    rated = [w for w in weeks if w.answered_rate is not None]
    if rated:
        mean = sum(w.answered for w in rated) / sum(w.asked for w in rated)
        desc = (
            f"Answered from the policy or by a reviewed answer: {mean:.0%} over the range; "
            + "; ".join(
                f"{w.week} {w.answered_rate:.0%}" for w in rated if w.answered_rate is not None
            )
            + "."
        )
    else:
        desc = "Nobody asked in the range, so there is no answered rate."
    out = [
        _open_svg(
            chart_id, max(left + plot_width + right, 560), height, "Answered rate per week", desc
        )
    ]
    for tick in (0, 25, 50, 75, 100):
        y = base - tick / 100 * plot_height
        out.append(
            f'<line x1="{left}" x2="{left + plot_width}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}%</text>'
        )
    label_every = max(1, ceil(len(weeks) * 44 / max(plot_width, 1)))
    segments: list[list[tuple[float, float]]] = [[]]
    for index, week in enumerate(weeks):
        x = left + index * slot + slot / 2
        if index % label_every == 0:
            out.append(
                f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" font-size="10">'
                f"{escape(_week_label(week))}</text>"
            )
        rate = week.answered_rate
        if rate is None:
            segments.append([])
            continue
        y = base - rate * plot_height
        segments[-1].append((x, y))
        out.append(
            f'<g class="point" id="{chart_id}-{week.week}" data-week="{week.week}" '
            f'data-rate="{rate:.4f}" data-answered="{week.answered}" data-asked="{week.asked}">'
            f"<title>{escape(week.week)}: {rate:.0%} ({week.answered} of {week.asked})</title>"
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{STYLES["from_policy"].colour}" '
            f'stroke="#fff"/>'
            f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" font-size="10">'
            f"{rate:.0%}</text></g>"
        )
    for points in segments:
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{STYLES["from_policy"].colour}" '
                f'stroke-width="2"/>'
            )
    out.append(
        f'<line x1="{left}" x2="{left + plot_width}" y1="{base}" y2="{base}" stroke="{INK}"/>'
        f'<text x="{left}" y="{base + 32}" font-size="10">Weeks starting (Monday, UTC); '
        "no point where nobody asked</text></svg>"
    )
    return "".join(out)


def sections_chart(cited: Sequence[CitedSection], *, chart_id: str = "chart-sections") -> str:
    """The most cited sections as horizontal bars, each labelled with its section and count."""
    label_width, bar_width, row_height, top = 300, 320, 26, 8
    width = label_width + bar_width + 60
    height = top + max(1, len(cited)) * row_height + 8
    desc = (
        "; ".join(f"{c.reference}: cited by {c.count}" for c in cited) + "."
        if cited
        else "No answer cited a section in the range."
    )
    out = [_open_svg(chart_id, width, height, "Most cited sections", desc)]
    largest = max((c.count for c in cited), default=1)
    for index, section in enumerate(cited):
        y = top + index * row_height
        length = bar_width * section.count / largest
        label = _cut(section.reference, 44)
        out.append(
            f'<g class="section" id="{chart_id}-{index + 1}" '
            f'data-section="{escape(section.section)}" '
            f'data-document="{escape(section.document)}" data-count="{section.count}">'
            f"<title>{escape(section.reference)}: cited by {section.count}</title>"
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row_height - 8}" '
            f'fill="{STYLES["from_policy"].colour}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 16}">{section.count}</text></g>'
        )
    if not cited:
        out.append(f'<text x="8" y="{top + 16}">No section was cited in this range.</text>')
    out.append("</svg>")
    return "".join(out)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def all_charts(trends: Trends) -> dict[str, str]:
    """The three charts of a trends page, by the name its CSV link uses."""
    return {
        "weekly": weekly_chart(trends.weeks),
        "rate": rate_chart(trends.weeks),
        "sections": sections_chart(trends.cited),
    }
