"""The question log as CSV or JSON for the policy team's own analysis, filtered by status,
owning team and dates. Askers appear as pseudonyms unless POLICYBOT_SHOW_ASKERS=1."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from bot.review.groups import ReviewError, owner_matches
from bot.store.database import Storage

FIELDS = (
    "id",
    "asked_at",
    "platform",
    "asker",
    "text",
    "status",
    "review_reason",
    "feedback",
    "answered",
    "outcome",
    "answer_source",
    "confidence",
    "policy_version",
    "cited_sections",
    "group_id",
    "group_status",
    "owner",
    "closest_section",
    "closest_title",
    "reviewed_answer",
    "reviewed_at",
)

STATUSES = ("all", "open", "answered", "resolved", "dismissed", "refused")


def parse_when(text: str, *, end: bool = False) -> str:
    """A date (YYYY-MM-DD) or ISO time as the ISO string the log is compared with; a bare
    date as an end bound includes that whole day."""
    raw = (text or "").strip()
    if not raw:
        return ""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return (day + timedelta(days=1 if end else 0)).isoformat()
        return datetime.fromisoformat(raw).isoformat(timespec="seconds")
    except ValueError:
        raise ReviewError(f"Cannot read the date {text!r}; write it like 2025-03-31.") from None


def export_rows(
    storage: Storage,
    *,
    status: str = "all",
    owner: str | None = None,
    since: str = "",
    until: str = "",
    show_askers: bool = False,
) -> list[dict[str, Any]]:
    if status not in STATUSES:
        raise ReviewError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
    rows = storage.questions_between(
        status=None if status == "all" else status,
        since=parse_when(since),
        until=parse_when(until, end=True),
    )
    if owner is not None:
        rows = [r for r in rows if owner_matches(owner, r.owner or "")]
    names = storage.asker_names(r.id for r in rows) if show_askers else {}
    out = []
    for row in rows:
        record = {name: getattr(row, name, None) for name in FIELDS}
        record["asker"] = names.get(row.id) or row.asker or ""
        record["cited_sections"] = "; ".join(
            dict.fromkeys(c["section"] for c in row.citations if c.get("section"))
        )
        out.append(record)
    return out


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=1)


def to_csv(rows: list[dict[str, Any]]) -> str:
    return write_csv(FIELDS, rows)


def write_csv(fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """Rows as CSV under a header of `fields`, every cell guarded against running as a
    spreadsheet formula (the one CSV writer of exports and the trend tables)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    # Questions are typed by anyone; a cell starting like a formula must not run in a
    # spreadsheet the policy team opens.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if value is None:
        return ""
    return value
