"""Run the reliability checks and write their figures into docs/reliability.md.

    .venv/bin/python -m tests.reliability_report

Runs pytest on the checks below with `--reliability-report`, then replaces the part of
docs/reliability.md between the FIGURES markers with what the run measured: nothing in that
table is typed by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- FIGURES:START -->", "<!-- FIGURES:END -->"

#: The checks written for the reliability work, which record their own figures.
MEASURED = [
    "tests/test_reliability_load.py",
    "tests/test_storage_engines.py",
    "tests/test_reliability_slack.py",
    "tests/test_reliability_faults.py",
    "tests/test_reliability_fuzz.py",
    "tests/test_reliability_access.py",
    "tests/test_reliability_teams_access.py",
    "tests/test_reliability_teams_tokens.py",
    "tests/test_reliability_data.py",
    "tests/test_reliability_hygiene.py",
    "tests/test_reliability_durable.py",
    "tests/test_reliability_teams_durable.py",
    "tests/test_reliability_grounded.py",
    "tests/test_reliability_llm_judge.py",
    "tests/test_reliability_uploads.py",
    "tests/test_reliability_outcomes.py",
    "tests/test_reliability_slack_agent.py",
    "tests/test_rough_edges.py",
    "tests/test_version_refs.py",
    "tests/test_tokenizer.py",
    "tests/test_semantic_fallback.py",
    "tests/test_tuned_embedder.py",
    "tests/test_teams_ai_messages.py",
    "tests/test_replicas.py",
    "tests/test_replica_round_trips.py",
    "tests/test_loop_acks.py",
    "tests/test_loop_vectors.py",
    "tests/test_reliability_streaming.py",
    "tests/test_reliability_conversations.py",
    "tests/test_db_copy.py",
    "tests/test_loop_admin.py",
    "tests/test_web_auth.py",
    "tests/test_web_review.py",
    "tests/test_web_policies.py",
    "tests/test_web_trends.py",
    "tests/test_web_browser.py",
    "tests/test_digest_chart.py",
    "tests/test_serve_memory.py",
    "tests/test_serve_processes.py",
    "tests/test_slack_backlog.py",
    "tests/test_received_spool.py",
]
#: Earlier tests that cover parts of the same ground: counted (tests run, failed, inputs
#: hypothesis may try) and listed with what they show.
REFERENCED = {
    "tests/test_llm_client.py": "Faults: LLM endpoint down (refused), slow (timeouts, budget), "
    "429 with Retry-After, 5xx retried a bounded number of times, malformed replies",
    "tests/test_llm_grounded.py": "Faults: any LLM failure falls back to the extractive answer "
    "with the reason logged; invented citations refused; prompt injection stays data; a summary "
    "the cited clauses do not support (a permission they do not give, a dropped condition, a "
    "flipped verdict) is replaced by the extractive answer",
    "tests/test_llm_judge.py": "Faults: with an LLM configured, an HTTP 500, a reply that is "
    "not JSON or a summary the cited clauses do not support leaves the decision to retrieval's "
    "confidence (answered, uncertain or not covered), the reason logged; below the floor no call",
    "tests/test_fuzz_reading.py": "Bad input: random Markdown/text and random bytes into the "
    "reader; random questions normalized or refused",
    "tests/test_fuzz_regressions.py": "Bad input: the inputs the atheris harness "
    "(`bench/fuzz.py`) found crashing or hanging the HTML, PDF and DOCX readers, and one "
    "found by reading; every harness target takes its seeds",
    "tests/test_admin_http.py": "Access: admin API token (missing, wrong, wrong scheme), "
    "oversized and malformed uploads",
    "tests/test_teams_http.py": "Access: Teams requests without a token when an app id is set; "
    "loopback-only unauthenticated mode; malformed activities",
    "tests/test_slack_http.py": "Access: forged and stale Slack signatures; retried events "
    "answered once",
    "tests/test_slack_upload.py": "Access and bad input: non-admin uploads, oversized and damaged "
    "files through Slack",
    "tests/test_teams_upload.py": "Access and bad input: non-admin uploads, oversized and damaged "
    "files through Teams",
    "tests/test_slack_blocks.py": "Bad input: escaping of mentions, links and broadcasts; "
    "Slack's size limits",
    "tests/test_backup.py": "Data: `policybot backup` makes a usable copy, never overwrites",
    "tests/test_review.py": "Data: pseudonyms, retention of reply addresses, purge",
}


def run(report: Path) -> int:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--reliability-report={report}",
        *MEASURED,
        *REFERENCED,
    ]
    return subprocess.run(command, cwd=ROOT).returncode


def cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(data: dict[str, Any]) -> str:
    lines = ["| check | figures | reproduce |", "| --- | --- | --- |"]
    for figure in data["figures"]:
        numbers = ", ".join(
            f"{k.replace('_', ' ')}: {cell(v)}" for k, v in figure["figures"].items()
        )
        lines.append(f"| {figure['check']} | {numbers} | `{figure['command']}` |")
    lines += ["", "Earlier tests on the same ground, counted in the same run:", ""]
    lines += [
        "| file | what it shows | tests | failed | hypothesis inputs (max) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path, what in REFERENCED.items():
        tests = {k: v for k, v in data["tests"].items() if k.startswith(path + "::")}
        failed = sum(1 for v in tests.values() if v["outcome"] != "passed")
        examples = sum(int(v.get("max_examples", 0)) for v in tests.values())
        lines.append(
            f"| `{path}` | {what} | {len(tests)} | {failed} | {cell(examples) if examples else '—'} |"
        )
    measured = {k: v for k, v in data["tests"].items() if k.split("::")[0] in MEASURED}
    failed = sum(1 for v in measured.values() if v["outcome"] != "passed")
    lines += ["", f"Reliability checks run: {len(measured)}, failed: {failed}."]
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "figures.json"
        status = run(report)
        data = json.loads(report.read_text())
    doc = DOC.read_text(encoding="utf-8")
    before, _, rest = doc.partition(START)
    _, _, after = rest.partition(END)
    DOC.write_text(f"{before}{START}\n{render(data)}\n{END}{after}", encoding="utf-8")
    print(f"figures written to {DOC.relative_to(ROOT)}")
    sys.exit(status)


if __name__ == "__main__":
    main()
