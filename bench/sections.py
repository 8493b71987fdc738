"""A bench's own section of docs/benchmarks.md, between its markers: each subcommand with
`--out` rewrites only its part of the page `make bench` wrote."""

from __future__ import annotations

from pathlib import Path


def write_between(path: Path, start: str, end: str, marked: str) -> None:
    """Put `marked` (the section with its `start` and `end` markers) where the page has those
    markers, or at the page's end the first time."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + marked + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + marked + "\n"
    path.write_text(text, encoding="utf-8")
