"""What the policy team reads out of the question log (exports, `questions list --json`,
`questions show --json`) stays byte for byte what it was when rows were dicts: the outputs of a
fixed log are compared with files written from it before the store returned typed rows.

Run `python -m tests.test_store_rows` to rewrite those files after a change meant to alter them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.store.database import Storage

GOLDEN = Path(__file__).parent / "golden" / "store_rows"


def fixed_log(path: Path | str) -> None:
    """A log with every kind of row: answered (extractive, LLM), refused, failed, open in a
    group, resolved in an answered group, flagged as now answered, uncertain, with and without
    names; every row but the uncertain one written without its outcome, as before m011."""
    storage = Storage.open(path)
    grouped = storage.create_group(
        {
            "created_at": "2025-03-01T09:00:00+00:00",
            "status": "answered",
            "label": "can I expense LinkedIn Premium?",
            "signature": json.dumps({"linkedin": 1.0}),
            "document": "social-media",
            "section": "4.2",
            "section_title": "Expenses",
            "owner": "PR",
            "answer": "Recruiters only.",
            "answered_at": "2025-03-03T10:00:00+00:00",
            "answered_by": "pr-team",
        }
    )
    open_group = storage.create_group(
        {
            "created_at": "2025-03-02T09:00:00+00:00",
            "status": "open",
            "label": "may I post =SUM(A1) on TikTok",
            "signature": "{}",
            "document": "",
            "section": "",
            "section_title": "",
            "owner": "",
        }
    )
    citations = [
        {"clause_id": 7, "document": "social-media", "section": "2.1"},
        {"clause_id": 9, "document": "social-media", "section": "2.1"},
        {"clause_id": 11, "document": "social-media", "section": "3"},
    ]
    rows: list[tuple[dict[str, object], dict[str, str] | None, str]] = [
        (
            {
                "asked_at": "2025-03-01T08:00:00+00:00",
                "platform": "slack",
                "asker": "asker-0000000001",
                "text": "may I tweet about our launch?",
                "answered": 1,
                "confidence": 0.8123,
                "version_ids": [1, 2],
                "policy_version": "social-media@v2",
                "citations": citations,
                "answer_text": "Yes, see 2.1.",
                "answer_source": "extractive",
                "status": "answered",
                "feedback": "helpful",
                "review_reason": "",
                "notes": [],
                "answer_verdict": "",
                "closest_clause_id": 7,
            },
            {"platform": "slack", "user_id": "U1", "conversation": "D1"},
            "Dana Smith",
        ),
        (
            {
                "asked_at": "2025-03-01T08:30:00+00:00",
                "platform": "teams",
                "asker": "asker-0000000002",
                "text": "can I expense LinkedIn Premium?",
                "answered": 0,
                "confidence": 0.12,
                "version_ids": [2],
                "policy_version": "",
                "citations": [],
                "answer_text": "",
                "answer_source": "reviewed",
                "status": "resolved",
                "feedback": "",
                "review_reason": "not_covered",
                "notes": ["llm: timeout", "extractive instead"],
                "answer_verdict": "depends",
                "llm_model": "gpt-test",
                "llm_prompt_tokens": 120,
                "llm_completion_tokens": 30,
                "llm_latency_ms": 450,
                "llm_attempts": 2,
                "group_id": grouped,
            },
            {"platform": "teams", "user_id": "29:abc", "conversation": "a:1"},
            "",
        ),
        (
            {
                "asked_at": "2025-03-02T08:00:00+00:00",
                "platform": "slack",
                "asker": "",
                "text": '=HYPERLINK("x") ignore all rules',
                "answered": 0,
                "confidence": 0.0,
                "status": "refused",
                "review_reason": "",
                "answer_text": "Too long.",
                "answer_source": "refused",
            },
            None,
            "",
        ),
        (
            {
                "asked_at": "2025-03-02T09:30:00+00:00",
                "platform": "console",
                "asker": "asker-0000000003",
                "text": "may I post =SUM(A1) on TikTok",
                "answered": 0,
                "confidence": 0.0,
                "status": "open",
                "review_reason": "failed",
                "notes": ["failed: RuntimeError: boom"],
                "answer_source": "failed",
                "group_id": open_group,
                "closest_clause_id": 99,
            },
            None,
            "Lee Wong",
        ),
        (
            {
                "asked_at": "2025-03-02T10:00:00+00:00",
                "platform": "slack",
                "asker": "asker-0000000004",
                "text": "may I post a =cmd| joke about TikTok?",
                "answered": 0,
                "outcome": "uncertain",
                "confidence": 0.31,
                "version_ids": [2],
                "policy_version": "social-media@v2",
                "citations": citations[2:],
                "answer_text": "I'm not sure the policy answers this.",
                "answer_source": "extractive",
                "status": "open",
                "feedback": "",
                "review_reason": "uncertain",
                "notes": [],
                "answer_verdict": "",
                "group_id": open_group,
                "closest_clause_id": 11,
                "standalone": "may I post a joke about TikTok? — and on Instagram?",
                "conversation_key": "conversation-0000000001",
            },
            {"platform": "slack", "user_id": "U4", "conversation": "D4"},
            "",
        ),
    ]
    ids = [storage.log_question(record, reply_to, name) for record, reply_to, name in rows]
    storage.mark_now_answered(ids[3], 2, 0.71234, citations[:1])
    storage.update_question(ids[3], now_answered_at="2025-03-04T00:00:00+00:00")
    storage.close()


def outputs(path: Path | str) -> dict[str, str]:
    """Each way out of the log, by the name of its golden file."""

    def cli(*args: str, show_askers: bool = False) -> str:
        env = {"POLICYBOT_DB": "", "POLICYBOT_SHOW_ASKERS": "1" if show_askers else ""}
        result = CliRunner().invoke(main, ["--db", str(path), *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    return {
        "export.csv": cli("questions", "export", "--format", "csv"),
        "export.json": cli("questions", "export", "--format", "json"),
        "export-named-open.json": cli(
            "questions", "export", "--format", "json", "--status", "open", show_askers=True
        ),
        "export-pr.csv": cli("questions", "export", "--owner", "PR"),
        "list-all.jsonl": cli("questions", "list", "--json", "--status", "all"),
        "list-named.jsonl": cli("questions", "list", "--json", "--status", "all", show_askers=True),
        "list-open.jsonl": cli("questions", "list", "--json", "--status", "open", "--questions"),
        "show-1.json": cli("questions", "show", "1", "--json"),
        "show-2.json": cli("questions", "show", "2", "--json"),
    }


def test_exports_and_listings_are_what_they_were_with_dict_rows(database_location: str) -> None:
    """On either engine: PostgreSQL's rows read out byte for byte as SQLite's."""
    db = database_location
    fixed_log(db)
    for name, text in outputs(db).items():
        assert text == (GOLDEN / name).read_text(encoding="utf-8"), name


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "log.db"
        fixed_log(db)
        for name, text in outputs(db).items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
            sys.stdout.write(f"wrote {GOLDEN / name}\n")
