"""The digest's picture for Slack and Teams: the console's weekly chart (stacked bars of how
questions were answered) as a PNG, drawn with Pillow, since neither platform shows SVG.

As on the console, each series has a pattern as well as a colour, the legend is in words and
every bar carries its numbers, so the picture reads in greyscale and without colour vision."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.web.charts import STYLES, nice_ticks, weekly_description
from bot.use_cases import KIND_LABELS, KINDS, WeekCounts

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

#: Drawn at twice the size it is shown at, so text stays sharp on high-density screens.
SCALE = 2
WIDTH, HEIGHT = 640, 360
TITLE = "Questions per week, by how they were answered"


def _font(size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    # Pillow's own font: nothing to install on the server, the same picture everywhere.
    return ImageFont.load_default(size=size)


def _hatch(
    draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], pattern: str, s: int
) -> None:
    """White marks over a filled box, clipped to it: the series' shape, not only its colour."""
    x0, y0, x1, y1 = box
    step = 8 * s
    if pattern == "dots":
        y = y0 + step / 2
        while y < y1:
            x = x0 + step / 2
            while x < x1:
                r = 1.6 * s
                draw.ellipse((x - r, y - r, x + r, y + r), fill="white")
                x += step
            y += step
        return
    directions = {"diagonal": (1,), "cross": (1, -1)}.get(pattern, ())
    for direction in directions:
        start = x0 - (y1 - y0)
        while start < x1:
            # "/" rising from the bottom edge, or "\\" falling from the top, clipped to the box.
            ax, ay, bx, by = start, y1, start + (y1 - y0), y0
            if direction == -1:
                ay, by = y0, y1
            points = _clip_line(ax, ay, bx, by, box)
            if points:
                draw.line(points, fill="white", width=s)
            start += step


def _clip_line(
    ax: float, ay: float, bx: float, by: float, box: tuple[float, float, float, float]
) -> list[tuple[float, float]] | None:
    """A segment clipped to a box (Liang–Barsky), or None when it misses it."""
    x0, y0, x1, y1 = box
    dx, dy = bx - ax, by - ay
    low, high = 0.0, 1.0
    for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return None
    return [(ax + low * dx, ay + low * dy), (ax + high * dx, ay + high * dy)]


def weekly_png(weeks: Sequence[WeekCounts], *, scale: int = SCALE, compact: bool = False) -> bytes:
    """The weekly chart as PNG bytes; `compact`: in a palette of a few colours, small enough
    to travel inside a Teams card (whose whole message is limited to about 28 KB)."""
    # Pillow here, not at the top: a server loads it only when a digest with a chart is posted.
    from PIL import Image, ImageDraw

    s = scale
    image = Image.new("RGB", (WIDTH * s, HEIGHT * s), "white")
    draw = ImageDraw.Draw(image)
    small, normal, bold = _font(10 * s), _font(12 * s), _font(13 * s)
    left, right, top, bottom = 44 * s, 16 * s, 40 * s, 90 * s
    plot_w, plot_h = WIDTH * s - left - right, HEIGHT * s - top - bottom
    base = top + plot_h
    draw.text((left, 10 * s), TITLE, fill="black", font=bold)
    ticks = nice_ticks(max((w.asked for w in weeks), default=0))
    per_question = plot_h / ticks[-1]
    for tick in ticks:
        y = base - tick * per_question
        draw.line((left, y, left + plot_w, y), fill="#c8c8c8", width=1)
        draw.text((left - 6 * s, y), f"{tick:g}", fill="black", font=small, anchor="rm")
    slot = plot_w / max(1, len(weeks))
    bar = slot * 0.7
    label_every = max(1, round(len(weeks) * 44 * s / plot_w + 0.49))
    for index, week in enumerate(weeks):
        x = left + index * slot + (slot - bar) / 2
        y = float(base)
        for kind in KINDS:
            value = week.count(kind)
            if not value:
                continue
            h = value * per_question
            box = (x, y - h, x + bar, y)
            draw.rectangle(box, fill=STYLES[kind].colour)
            _hatch(draw, box, STYLES[kind].pattern, s)
            if h >= 15 * s and bar >= 16 * s:
                cx, cy = x + bar / 2, y - h / 2
                draw.rounded_rectangle(
                    (cx - 10 * s, cy - 7 * s, cx + 10 * s, cy + 7 * s), 2 * s, fill="white"
                )
                draw.text((cx, cy), str(value), fill="black", font=small, anchor="mm")
            y -= h
        draw.text((x + bar / 2, y - 3 * s), str(week.asked), fill="black", font=normal, anchor="md")
        if index % label_every == 0:
            label = f"{week.monday:%d %b}".lstrip("0")
            draw.text((x + bar / 2, base + 5 * s), label, fill="black", font=small, anchor="mt")
    draw.line((left, base, left + plot_w, base), fill="black", width=s)
    draw.text((left, base + 20 * s), "Weeks starting (Monday, UTC)", fill="black", font=small)
    for number, kind in enumerate(KINDS):
        lx = left + (number % 2) * 280 * s
        ly = base + 40 * s + (number // 2) * 20 * s
        box = (lx, ly, lx + 14 * s, ly + 14 * s)
        draw.rectangle(box, fill=STYLES[kind].colour, outline="black")
        _hatch(draw, box, STYLES[kind].pattern, s)
        text = f"{KIND_LABELS[kind]} ({STYLES[kind].described})"
        draw.text((lx + 20 * s, ly + 7 * s), text, fill="black", font=normal, anchor="lm")
    out = io.BytesIO()
    if compact:
        # Four series, ink, grid and white: 16 colours keep every one and the text legible.
        image = image.quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def alt_text(weeks: Sequence[WeekCounts]) -> str:
    """What the picture shows, in words, for its alt text."""
    return f"{TITLE}. {weekly_description(weeks)}"
