"""The third outcome end to end in the core: an uncertain answer quotes the closest clauses
under a lead saying they may not be what was asked, goes on the review list as a not-covered
question does, is logged with its outcome, can be rated, and is reached by a reviewed answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import sqlite_utils
from click.testing import CliRunner

from bot import messages
from bot.answering.outcome import Outcome
from bot.cli import main
from bot.config import Settings
from bot.core import HELPFUL, PolicyBot, policy_teams
from bot.models import Actor, IncomingQuestion
from bot.notify import ReviewNotice
from bot.review.digest import build_digest
from bot.store.database import Storage
from tests.bands import ROADMAP, uncertain_for
from tests.fakes.outbound import RecordingNotifier, RecordingPoster

CAFETERIA = "what time does the cafeteria open?"


async def test_an_uncertain_answer_quotes_the_closest_clauses_and_goes_to_the_policy_team(
    settings: Settings, bot_with: Callable[..., PolicyBot]
) -> None:
    confident = await bot_with().ask(IncomingQuestion(ROADMAP))
    unsure = bot_with(**_band(settings))
    channel = RecordingPoster[ReviewNotice]()
    unsure.review_posters["slack"] = channel
    incoming = IncomingQuestion(ROADMAP, platform="slack", asker="U1")
    answer = await unsure.ask(incoming)
    await unsure.after_reply(incoming, answer)

    assert answer.outcome is Outcome.UNCERTAIN and not answer.answered
    # The same clauses a confident answer cites, said plainly to be possibly not what was asked.
    assert [c.clause_id for c in answer.citations] == [c.clause_id for c in confident.citations]
    first = answer.citations[0]
    assert answer.lead.startswith("I'm not sure the policy answers this.")
    assert f"section {first.section}" in answer.lead
    teams = policy_teams(unsure.active_versions())
    assert teams and all(team in answer.lead for team in teams)
    assert "policy addresses this" not in answer.lead

    row = unsure.storage.question(answer.question_id or 0)
    assert (row.outcome, row.status, row.review_reason) == ("uncertain", "open", "uncertain")
    assert row.answered is False and row.citations == [c.as_logged() for c in answer.citations]
    (group,) = unsure.review.queue()
    assert row.group_id == group.id and group.reasons == ("uncertain",)
    (notice,) = channel.posts
    assert (notice.question_id, notice.reason, notice.group_id) == (
        answer.question_id,
        "uncertain",
        group.id,
    )
    digest = build_digest(unsure.storage, unsure.review)
    assert (digest.asked, digest.answered_from_policy, digest.sent_to_review) == (1, 0, 1)
    assert unsure.logged_answer(row.id).outcome is Outcome.UNCERTAIN


async def test_an_uncertain_answer_can_be_rated_a_not_covered_one_cannot(
    settings: Settings, bot_with: Callable[..., PolicyBot]
) -> None:
    bot = bot_with(**_band(settings))
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    unsure = await bot.ask(IncomingQuestion(ROADMAP))
    uncovered = await bot.ask(IncomingQuestion(CAFETERIA))
    assert (unsure.outcome, uncovered.outcome) == (Outcome.UNCERTAIN, Outcome.NOT_COVERED)
    actor = Actor("slack", "U1")
    assert await bot.react_to_answer(actor, unsure.question_id, HELPFUL, tell)
    assert not await bot.react_to_answer(actor, uncovered.question_id, HELPFUL, tell)
    assert told == [messages.REACTION_NOTES[HELPFUL], messages.NOTHING_TO_RATE]
    assert bot.storage.question(unsure.question_id or 0).feedback == "helpful"
    assert bot.storage.question(uncovered.question_id or 0).feedback == ""


async def test_a_reviewed_answer_reaches_whoever_got_an_uncertain_one(
    settings: Settings, bot_with: Callable[..., PolicyBot]
) -> None:
    bot = bot_with(**_band(settings))
    notifier = RecordingNotifier()
    bot.notifiers["slack"] = notifier
    answer = await bot.ask(IncomingQuestion(ROADMAP, platform="slack", asker="U1"))
    (group,) = bot.review.queue()
    report = await bot.answer_group(group.id, "Only once the launch is announced.", "pr")
    assert report.sent == 1
    ((address, text),) = notifier.sent
    assert address.user_id == "U1" and "Only once the launch is announced." in text
    assert bot.storage.question(answer.question_id or 0).status == "resolved"


async def test_a_recheck_flags_only_what_the_policy_now_answers_with_confidence(
    settings: Settings, bot_with: Callable[..., PolicyBot]
) -> None:
    band = _band(settings)
    bot = bot_with(**band)
    answer = await bot.ask(IncomingQuestion(ROADMAP))
    assert answer.outcome is Outcome.UNCERTAIN
    # Still uncertain against the active policy: nothing new to tell the policy team.
    assert bot.policies.recheck_open_questions() == (1, [])
    assert bot.storage.question(answer.question_id or 0).now_answered_version is None
    # A policy (here: a threshold) under which it is answered with confidence: flagged.
    bot.policies.min_confidence = band["uncertain_confidence"]
    assert bot.policies.recheck_open_questions() == (1, [answer.question_id])
    row = bot.storage.question(answer.question_id or 0)
    assert row.now_answered_version is not None and row.now_answered_citations


def test_ask_json_carries_the_outcome_and_the_closest_clauses(settings: Settings) -> None:
    band = uncertain_for(settings)
    env = {
        "POLICYBOT_DB": str(Path(settings.db_path)),
        "POLICYBOT_RETRIEVER": "lexical",
        "POLICYBOT_MIN_CONFIDENCE": str(band.min_confidence),
        "POLICYBOT_UNCERTAIN_CONFIDENCE": str(band.uncertain_confidence),
    }
    runner = CliRunner()
    result = runner.invoke(main, ["ask", "--json", ROADMAP, CAFETERIA], env=env)
    assert result.exit_code == 0, result.output
    unsure, uncovered = (json.loads(line) for line in result.output.splitlines())
    assert (unsure["outcome"], unsure["answered"]) == ("uncertain", False)
    assert unsure["citations"] and unsure["citations"][0]["text"]
    assert (uncovered["outcome"], uncovered["citations"]) == ("not_covered", [])

    plain = runner.invoke(main, ["ask", ROADMAP], env=env)
    assert plain.exit_code == 0, plain.output
    assert "I'm not sure the policy answers this." in plain.output
    assert f"[{unsure['citations'][0]['section']}" in plain.output  # the clause quoted

    listed = runner.invoke(main, ["questions", "list", "--json"], env=env)
    outcomes = [json.loads(line)["outcome"] for line in listed.output.splitlines()]
    assert outcomes == ["uncertain", "not_covered", "uncertain"]  # newest first
    exported = runner.invoke(main, ["questions", "export", "--format", "json"], env=env)
    assert [row["outcome"] for row in json.loads(exported.output)] == outcomes[::-1]


def test_the_outcome_of_questions_logged_before_it_existed(tmp_path: Path) -> None:
    """m011: an answered question was answered; any other one was a not-covered one."""
    from bot.store.schema import migrations

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m011_question_outcomes")
    old.table("questions").insert_all(
        [
            {"id": 1, "text": "a", "answered": 1, "status": "answered", "answer_source": "x"},
            {"id": 2, "text": "b", "answered": 0, "status": "open", "answer_source": "x"},
            {"id": 3, "text": "c", "answered": 0, "status": "refused", "answer_source": "x"},
            {"id": 4, "text": "d", "answered": 1, "status": "open", "answer_source": "x"},
        ]
    )
    old.close()
    storage = Storage.open(str(path))
    try:
        outcomes = {q.id: q.outcome for q in storage.questions(status=None)}
    finally:
        storage.close()
    assert outcomes == {1: "answered", 2: "not_covered", 3: "not_covered", 4: "answered"}
    migrated = sqlite_utils.Database(path)
    assert [r[0] for r in migrated.execute("SELECT outcome FROM questions ORDER BY id")] == [
        "answered",
        "not_covered",
        "not_covered",
        "answered",
    ]


def _band(settings: Settings) -> dict[str, float]:
    band = uncertain_for(settings)
    return {
        "min_confidence": band.min_confidence,
        "uncertain_confidence": band.uncertain_confidence,
    }
