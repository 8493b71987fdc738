"""Figures the reliability checks measure, gathered while pytest runs.

A check calls `record(...)` with what it did (requests sent, faults injected, inputs tried,
failures seen); `pytest --reliability-report=FILE` writes everything recorded to FILE as JSON,
and `python -m tests.reliability_report` turns that into docs/reliability.md.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    check: str
    command: str
    figures: dict[str, Any] = field(default_factory=dict)


FIGURES: list[Figure] = []


def record(check: str, command: str, **figures: Any) -> None:
    """Note a check's figures; the same check recorded again adds to the earlier numbers."""
    for existing in FIGURES:
        if existing.check == check:
            for key, value in figures.items():
                old = existing.figures.get(key)
                if isinstance(old, int) and isinstance(value, int):
                    existing.figures[key] = old + value
                else:
                    existing.figures[key] = value
            return
    FIGURES.append(Figure(check, command, dict(figures)))


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies in milliseconds (reported, never asserted)."""
    if not samples_ms:
        return {}
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []

    def at(p: int) -> float:
        return round(cuts[p - 1] if cuts else ordered[0], 1)

    return {"p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99), "max_ms": round(ordered[-1], 1)}
