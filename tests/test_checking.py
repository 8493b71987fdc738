"""Checking a draft post against the policy (core, no platform)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.answering.checking import passages
from bot.core import PolicyBot
from bot.models import QuestionError


def test_a_post_about_an_unreleased_product_raises_the_confidentiality_clause(
    bot: PolicyBot,
) -> None:
    check = bot.check_post(
        "So excited: our new tracking app is launching next month, it's still under wraps!"
    )
    assert check.applies
    assert "3.3" in [f.citation.section for f in check.findings]
    assert all(f.passages for f in check.findings)
    assert "3.3" in check.lead and check.policy_version


def test_clauses_are_reported_once_and_at_most_the_limit(bot: PolicyBot) -> None:
    post = " ".join(
        [
            "Our new app launching next month is secret.",
            "The new app launching soon will beat every competitor.",
            "My manager is a fool and management has no idea.",
        ]
        * 5
    )
    check = bot.check_post(post)
    ids = [f.citation.clause_id for f in check.findings]
    assert len(ids) == len(set(ids)) and 0 < len(ids) <= bot.settings.max_citations + 2


def test_nothing_applies_to_small_talk(bot: PolicyBot) -> None:
    check = bot.check_post("Lovely weather today. Going for a run.")
    assert not check.applies and "Nothing in the policy" in check.lead


def test_empty_and_huge_texts_are_refused(bot: PolicyBot) -> None:
    with pytest.raises(QuestionError, match="no text"):
        bot.check_post(" \n ")
    with pytest.raises(QuestionError, match="characters long"):
        bot.check_post("word " * 5000)


def test_checking_logs_nothing(bot: PolicyBot) -> None:
    bot.check_post("Our new app launching next month is secret.")
    assert bot.storage.questions(status=None) == []


async def test_logged_answer_is_the_answer_as_given(bot: PolicyBot) -> None:
    from bot.models import IncomingQuestion

    answer = await bot.ask(IncomingQuestion("may I share our unreleased roadmap on LinkedIn?"))
    again = bot.logged_answer(answer.question_id or 0)
    assert again.lead == answer.lead and again.question == answer.question
    assert [c.text for c in again.citations] == [c.text for c in answer.citations]
    with pytest.raises(KeyError):
        bot.logged_answer(424242)


async def test_a_logged_answer_keeps_the_document_title_of_its_citations(bot: PolicyBot) -> None:
    """Slack's "Share in channel" shows a logged answer again: the policy's title stays."""
    from bot.models import IncomingQuestion

    answer = await bot.ask(IncomingQuestion("may I share our unreleased roadmap on LinkedIn?"))
    again = bot.logged_answer(answer.question_id or 0)
    assert answer.citations and all(c.document_title for c in answer.citations)
    assert again.citations == tuple(dataclasses.replace(c, score=0.0) for c in answer.citations)


def test_only_the_active_versions_words_make_windows(reworded_bot: PolicyBot) -> None:
    """Rarity is counted in the active versions, as retrieval counts it: a retired version's
    words ("phone", "email") are not the policy's words any more."""
    post = "Reading work email on my phone."
    assert passages(post, reworded_bot.active_policy()) == [post]
    reworded_bot.policies.rollback("devices")
    windows = ["reading work email", "work email phone"]
    assert passages(post, reworded_bot.active_policy()) == [post, *windows]
