"""With an LLM configured the LLM judges coverage: it sees the top eight clauses of every question
above the floor, its `not_covered` is final, and when its reply cannot be used retrieval's
confidence decides (answered, uncertain or not covered). Through the core, against the loopback
OpenAI-compatible stub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from bot.answering.grounded import SUMMARY_PREFIX, UNSUPPORTED, GroundedAnswerer
from bot.answering.outcome import Outcome
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import Answer, IncomingQuestion
from bot.store.database import QuestionRow, Storage
from tests.fakes.openai_stub import OpenAIStub, Recorded, Reply, answer, completion, error

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"
#: Asked in other words than the policy's: lexical retrieval finds §3.3 but is not sure of it.
LAUNCH = "can I tell my friends about the thing we are launching next month?"
ROADMAP_SUMMARY = "You can't share the roadmap before Marketing makes it public."
NOTHING_IN_COMMON = "how tall is the eiffel tower?"
DOG = "can I bring my dog to the office"

MakeBot = Callable[..., PolicyBot]


@pytest.fixture
async def judging_bot(settings: Settings, llm_stub: OpenAIStub) -> AsyncIterator[MakeBot]:
    """`judging_bot(min_confidence=...)`: the bundled policy, the LLM configured through the
    settings (as `PolicyBot.create` builds it) on the stub."""
    made: list[PolicyBot] = []

    def make(**options: Any) -> PolicyBot:
        configured = replace(
            settings,
            openai_base_url=llm_stub.url,
            openai_api_key="sk-judge-key",
            llm_model="stub-model",
            llm_timeout=5.0,  # generous: no test here waits for a timeout
            llm_retries=0,
            llm_budget=5.0,
            **options,
        )
        bot = PolicyBot.create(configured, storage=Storage.memory())
        bot.ensure_policy()
        made.append(bot)
        return bot

    yield make
    for bot in made:
        await bot.aclose()
        bot.storage.close()


def judge(bot: PolicyBot) -> GroundedAnswerer:
    assert isinstance(bot.answerer, GroundedAnswerer)
    return bot.answerer


async def ask(bot: PolicyBot, text: str) -> tuple[Answer, QuestionRow]:
    result = await bot.ask(IncomingQuestion(text, asker="U1"))
    return result, bot.storage.question(result.question_id or 0)


def cite_section(verdict: str, text: str, section: str) -> Callable[[Recorded], Reply]:
    """A model that answers from the first clause of `section` it is given."""

    def reply(request: Recorded) -> Reply:
        ids = [c["id"] for c in request.data["clauses"] if c["section"].startswith(section)]
        return answer(verdict, text, ids[:1])

    return reply


async def test_a_question_retrieval_under_rates_is_answered_from_the_clause_the_llm_finds(
    judging_bot: MakeBot, llm_stub: OpenAIStub
) -> None:
    # No confidence reaches these thresholds: retrieval alone would call LAUNCH not covered.
    bot = judging_bot(min_confidence=0.99, uncertain_confidence=0.99)
    assert bot.settings.llm_floor <= bot.retrieve(LAUNCH).confidence < 0.99
    llm_stub.script(cite_section("not_allowed", ROADMAP_SUMMARY, "3.3"))
    result, row = await ask(bot, LAUNCH)
    (request,) = llm_stub.requests
    assert len(request.data["clauses"]) == 8
    assert result.answered and result.source == "llm" and result.verdict == "not_allowed"
    assert result.lead == f"{SUMMARY_PREFIX} {ROADMAP_SUMMARY}"
    assert [c.section for c in result.citations] == ["3.3"]
    assert row.status == "answered" and row.review_reason == "" and row.notes == []
    assert bot.open_questions() == []


async def test_a_confident_question_the_llm_calls_not_covered_is_not_covered(
    judging_bot: MakeBot, llm_stub: OpenAIStub
) -> None:
    # Every clause found would be answered on retrieval alone; the model's word is final.
    bot = judging_bot(min_confidence=0.0, uncertain_confidence=0.0)
    llm_stub.script(answer("not_covered", "The clauses do not say.", []))
    judged = await judge(bot).judge(bot.retrieve(ROADMAP))
    assert judged.outcome is Outcome.NOT_COVERED and judged.asked and not judged.fallback
    llm_stub.script(answer("not_covered", "The clauses do not say.", []))
    result, row = await ask(bot, ROADMAP)
    assert not result.answered and not result.citations and result.verdict == "not_covered"
    assert row.status == "open" and row.review_reason == "not_covered"
    assert [q.id for q in bot.open_questions()] == [result.question_id]
    assert len(llm_stub.requests) == 2


@pytest.mark.parametrize(
    ("question", "options"),
    [
        (NOTHING_IN_COMMON, {}),
        (DOG, {"llm_floor": 0.99, "min_confidence": 0.99}),
    ],
    ids=["nothing-found", "clauses-found-below-the-floor"],
)
async def test_below_the_floor_the_llm_is_not_called(
    judging_bot: MakeBot, llm_stub: OpenAIStub, question: str, options: dict[str, float]
) -> None:
    bot = judging_bot(**options)
    assert bot.retrieve(question).confidence < bot.settings.llm_floor
    result, row = await ask(bot, question)
    assert not result.answered and row.review_reason == "not_covered"
    assert llm_stub.requests == [] and row.llm_model is None and row.notes == []


async def test_at_a_floor_of_zero_a_question_with_clauses_reaches_the_llm(
    judging_bot: MakeBot, llm_stub: OpenAIStub
) -> None:
    """The control for the floor test: the same question, the floor lowered, one call."""
    bot = judging_bot(llm_floor=0.0, min_confidence=0.99)
    llm_stub.script(answer("not_covered", "The clauses do not say.", []))
    result, row = await ask(bot, DOG)
    assert len(llm_stub.requests) == 1 and row.llm_model == "stub-model"
    assert not result.answered and result.verdict == "not_covered"


EVERYTHING = "Posting everything is allowed. You may post anything you like."
FAILURES: dict[str, Callable[[Recorded], Reply]] = {
    "http-500": lambda request: error(500),
    "not-json": lambda request: completion("Sure! The answer is yes."),
    "unsupported-summary": lambda request: answer(
        "allowed", EVERYTHING, [next(iter(request.clauses))]
    ),
}
FAILURE_NOTES = {
    "http-500": "the LLM failed with HTTP 500",
    "not-json": "holds no JSON object",
    "unsupported-summary": UNSUPPORTED,
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize(
    ("band", "expected"),
    [
        ("at-min-confidence", Outcome.ANSWERED),
        ("between-the-thresholds", Outcome.UNCERTAIN),
        ("below-both", Outcome.NOT_COVERED),
    ],
)
async def test_when_the_llm_reply_cannot_be_used_retrieval_alone_decides(
    settings: Settings,
    judging_bot: MakeBot,
    llm_stub: OpenAIStub,
    failure: str,
    band: str,
    expected: Outcome,
) -> None:
    # The thresholds are placed around this question's own confidence, so each band is
    # reached whatever retrieval scores it.
    plain = PolicyBot.create(settings, storage=Storage.memory())
    plain.ensure_policy()
    confidence = plain.retrieve(ROADMAP).confidence
    plain.storage.close()
    above = min(confidence + 0.01, 1.0)
    thresholds = {
        "at-min-confidence": (confidence, confidence),
        "between-the-thresholds": (above, confidence),
        "below-both": (above, above),
    }[band]
    bot = judging_bot(min_confidence=thresholds[0], uncertain_confidence=thresholds[1])
    llm_stub.script(FAILURES[failure], FAILURES[failure])
    judged = await judge(bot).judge(bot.retrieve(ROADMAP))
    assert judged.outcome is expected and judged.asked
    assert FAILURE_NOTES[failure] in judged.fallback
    result, row = await ask(bot, ROADMAP)
    assert result.source == "extractive" and "everything" not in result.plain_text().lower()
    (note,) = row.notes
    assert note.startswith("llm fallback:") and FAILURE_NOTES[failure] in note
    assert "sk-judge-key" not in note
    if expected is Outcome.ANSWERED:
        assert result.answered and result.citations[0].section == "3.3"
        assert row.status == "answered"
    else:
        # Uncertain or not covered, the question goes to the policy team.
        assert not result.answered and row.status == "open"
        assert [q.id for q in bot.open_questions()] == [result.question_id]
    assert len(llm_stub.requests) == 2


def test_the_floor_is_read_and_checked_at_start_up() -> None:
    assert Settings.from_env({}).llm_floor == 0.05
    assert Settings.from_env({"POLICYBOT_LLM_FLOOR": " 0.1 "}).llm_floor == 0.1
    with pytest.raises(ConfigError, match="POLICYBOT_LLM_FLOOR must be at least 0 and at most 1"):
        Settings.from_env({"POLICYBOT_LLM_FLOOR": "1.5"})
    with pytest.raises(ConfigError, match="POLICYBOT_LLM_FLOOR must be a number, got 'low'"):
        Settings.from_env({"POLICYBOT_LLM_FLOOR": "low"})


async def test_a_floor_above_min_confidence_counts_as_min_confidence(
    judging_bot: MakeBot,
) -> None:
    """A question confident enough to be answered on retrieval alone always reaches the LLM."""
    assert judge(judging_bot(llm_floor=0.9, min_confidence=0.4)).floor == 0.4
    assert judge(judging_bot(llm_floor=0.1, min_confidence=0.4)).floor == 0.1
