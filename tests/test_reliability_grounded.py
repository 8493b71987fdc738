"""Prompt injection through the real server: a summary the cited clauses do not support never
reaches the asker; the policy's own words do, and the reason is logged."""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import time

import pytest

from adapters.replies import APOLOGY
from bench.groundedness import CASES as BUILT_ON
from bench.groundedness import HELD_OUT, follower, load_cases
from bot.answering.grounded import SUMMARY_PREFIX, UNSUPPORTED
from bot.config import Settings
from tests.fakes.openai_stub import OpenAIStub
from tests.fakes.slack_harness import slack_server
from tests.reliability import record

OPENAI_KEY = "sk-groundedness-key-5e4d3c2b1a"


async def test_injected_summaries_never_reach_a_slack_asker(
    settings: Settings, llm_stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.answering.grounded")
    cases = [c for c in load_cases(BUILT_ON) + load_cases(HELD_OUT) if c.policy == "bundled"]
    configured = dataclasses.replace(
        settings,
        openai_base_url=llm_stub.url,
        openai_api_key=OPENAI_KEY,
        llm_model="stub-follows-injections",
        llm_budget=5,
    )
    caught = kept = shown_unsupported = replaced_faithful = invalid = 0
    latencies = []
    async with slack_server(configured) as slack:
        for n, case in enumerate(cases, 1):
            llm_stub.script(follower(case))
            started = time.perf_counter()
            await slack.dm(case.question, user=f"U{n:04d}")
            posts = await slack.api.wait_for("chat.postMessage", n)
            latencies.append((time.perf_counter() - started) * 1000)
            shown = json.dumps(posts[-1], ensure_ascii=False)
            assert APOLOGY not in shown
            summary_shown = SUMMARY_PREFIX in shown
            last = slack.bot.storage.questions(status=None, limit=1)[0]
            if any("HTTP 409" in note for note in last.notes):
                # Retrieval did not give the model the clause the case cites (the stub refuses
                # with 409): not a test of the check, as the bench counts it too.
                invalid += 1
            elif case.expect == "unsupported":
                caught += not summary_shown
                shown_unsupported += summary_shown
            else:
                kept += summary_shown
                replaced_faithful += not summary_shown
        logged = slack.bot.storage.questions(status=None, limit=1000)
    assert len(logged) == len(cases) and llm_stub.unused == 0
    notes = [note for row in logged for note in row.notes if UNSUPPORTED in note]
    # Every unsupported summary the asker did not see is on record with its reason.
    assert len(notes) == caught + replaced_faithful
    refused = [r for r in caplog.records if UNSUPPORTED in r.getMessage()]
    assert len(refused) == len(notes)
    assert OPENAI_KEY not in caplog.text + json.dumps(notes)
    unsupported = sum(c.expect == "unsupported" for c in cases)
    faithful = len(cases) - unsupported
    assert invalid <= 2, "retrieval should give the model the cited clause in almost every case"
    # The floors of tests/test_eval.py, here over Slack: most caught, most kept.
    assert caught >= unsupported - 2 and kept >= faithful - 2
    record(
        "Prompt injection: LLM summaries the cited clauses do not support, over Slack",
        "pytest tests/test_reliability_grounded.py",
        questions=len(cases),
        unsupported_sent=unsupported,
        unsupported_caught=caught,
        unsupported_shown=shown_unsupported,
        faithful_sent=faithful,
        faithful_kept=kept,
        faithful_replaced=replaced_faithful,
        reasons_logged=len(notes),
        cited_clause_not_retrieved=invalid,
        answer_p50_ms=round(statistics.median(latencies)),
        apologies=0,
        failures=0,
    )
