"""The policy team's review channel in Teams (POLICYBOT_TEAMS_REVIEW_CONVERSATION), over HTTP:
questions that reach the review list are posted there as cards through the connector stub,
beside the asker's own reply, and a refused post never costs the asker the answer. The card's
Answer and Dismiss work for the policy team only, reach the askers as `review`'s cards do, and
leave the card saying how its group was handled."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters import replies
from adapters.server import build_app
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from tests.fakes.bot_connector import Call, ConnectorStub
from tests.fakes.loopback import LOOPBACK, serving
from tests.fakes.teams_activities import BOB, PAT, PERSONAL, card_submit, message, submit
from tests.fakes.teams_harness import (
    card_text,
    local_teams,
    post,
    post_turn,
    submit_data,
    turns_finished,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return local_teams(settings)


REVIEW = "19:policy-review@thread.tacv2"
UNCOVERED = "what time does the cafeteria open?"
COVERED = "may I share our unreleased roadmap on LinkedIn?"


@pytest.fixture
def review_options(stub: ConnectorStub) -> dict[str, Any]:
    return {"teams_review_conversation": REVIEW, "teams_service_url": stub.url}


@pytest.fixture
async def review_server(
    bot_with: Callable[..., PolicyBot], review_options: dict[str, Any]
) -> AsyncIterator[tuple[PolicyBot, str]]:
    """The app with a review conversation configured, and its core."""
    bot = bot_with(**review_options)
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        yield bot, base


def facts(card: dict[str, Any]) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for block in card["body"]
        if block["type"] == "FactSet"
        for fact in block["facts"]
    }


def review_posts(stub: ConnectorStub) -> list[Call]:
    return stub.in_conversation(REVIEW)


async def answered(base: str, stub: ConnectorStub) -> dict[str, dict[str, Any]]:
    """Ask a question the policy covers; the submit data of its card's buttons."""
    await turns_finished()  # any question before this one has its replies
    before = len(stub.calls)
    await post(base, message(COVERED, stub.url))
    await turns_finished()
    reply = (await stub.received(before + 1))[-1]
    assert reply.conversation_id == PERSONAL["id"] and reply.card is not None
    return submit_data(reply.card)


async def test_an_uncovered_question_is_posted_to_the_review_conversation(
    review_server: tuple[PolicyBot, str], stub: ConnectorStub
) -> None:
    bot, base = review_server
    await post(base, message(UNCOVERED, stub.url))
    reply, notice = await stub.received(2)
    # The asker is answered first, in their own chat; then the policy team hears of it.
    assert reply.conversation_id == PERSONAL["id"]
    assert "does not cover this" in card_text(reply.card or {})
    assert notice.conversation_id == REVIEW
    assert notice.method == "POST" and notice.activity_id == ""  # a new post in the channel
    (question,) = bot.open_questions()
    card = notice.card
    assert card is not None and card["type"] == "AdaptiveCard"
    assert f"“{UNCOVERED}”" in card_text(card)
    assert facts(card)["Why"] == "not covered by the policy"
    assert facts(card)["Question"] == f"#{question.id}"
    assert facts(card)["Group"] == f"#{question.group_id}"
    # POLICYBOT_SHOW_ASKERS is off: the asker is nowhere on the card.
    assert "29:alice" not in str(card) and "Alice" not in str(card)
    assert notice.body.get("summary", "").startswith("Question for the policy team")
    # The group's Answer (with the box's text) and Dismiss, as on a `review` card.
    (box,) = [block for block in card["body"] if block["type"] == "Input.Text"]
    assert box["id"] == "answer" and box["isRequired"]
    buttons = submit_data(card)
    assert set(buttons) == {"Answer", "Dismiss"}
    for action in ("Answer", "Dismiss"):
        assert buttons[action]["group_id"] == question.group_id
        assert buttons[action]["question_id"] == question.id
    assert buttons["Answer"]["policybot"] == "answer_group"
    assert buttons["Dismiss"]["policybot"] == "dismiss_group"


async def test_not_helpful_and_ask_the_policy_team_are_posted_but_helpful_is_not(
    review_server: tuple[PolicyBot, str], stub: ConnectorStub
) -> None:
    _, base = review_server
    buttons = await answered(base, stub)
    await post(base, card_submit("helpful", buttons["Helpful"]["question_id"], stub.url))
    await turns_finished()  # a button's turn runs after its acknowledgement
    assert stub.calls[-1].text == messages.REACTION_NOTES["helpful"]
    assert review_posts(stub) == []

    await post(base, card_submit("not_helpful", buttons["Not helpful"]["question_id"], stub.url))
    await turns_finished()
    assert "review list" in stub.calls[-2].text  # the asker's confirmation comes first
    (not_helpful,) = review_posts(stub)
    card = not_helpful.card or {}
    assert facts(card)["Why"] == "answer marked not helpful"
    assert facts(card)["Question"] == f"#{buttons['Helpful']['question_id']}"
    assert f"“{COVERED}”" in card_text(card)  # read back from the log: the press has no text

    escalate = (await answered(base, stub))["Ask the policy team"]
    await post_turn(base, card_submit("ask_policy_team", escalate["question_id"], stub.url))
    assert facts(review_posts(stub)[-1].card or {})["Why"] == "asker wants the policy team"
    assert len(review_posts(stub)) == 2


async def test_the_asker_is_named_only_with_show_askers(
    bot_with: Callable[..., PolicyBot], review_options: dict[str, Any], stub: ConnectorStub
) -> None:
    bot = bot_with(show_askers=True, **review_options)
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(UNCOVERED, stub.url))
        # A button press carries no name: it is read from the log, where the question left it.
        buttons = await answered(base, stub)
        await post(base, card_submit("not_helpful", buttons["Helpful"]["question_id"], stub.url))
        # Without a name from Teams, the card falls back to the asker's id.
        await post(base, message(UNCOVERED, stub.url, sender={"id": "29:nameless"}))
        await turns_finished()
    uncovered, not_helpful, nameless = (card_text(call.card or {}) for call in review_posts(stub))
    assert "Asked by Alice Example" in uncovered and "29:alice" not in uncovered
    assert "Asked by Alice Example" in not_helpful
    assert "Asked by 29:nameless" in nameless
    # Rebuilt from the log (to settle a card), the notice names the asker the same way.
    logged = bot.open_questions()
    first = min(q.id for q in logged)
    rebuilt = bot.review_notice(first)
    assert (rebuilt.asker_name, rebuilt.asker) == ("Alice Example", "29:alice")


async def test_without_the_setting_nothing_is_posted_to_a_review_conversation(
    bot: PolicyBot, stub: ConnectorStub
) -> None:
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        assert "teams" not in bot.review_posters
        await post(base, message(UNCOVERED, stub.url))
        buttons = await answered(base, stub)
        await post(base, card_submit("not_helpful", buttons["Helpful"]["question_id"], stub.url))
    # Every turn is over (the server gives those under way their time as it stops):
    # only the asker's own chat heard anything.
    assert {call.conversation_id for call in stub.calls} == {PERSONAL["id"]}
    assert len(stub.calls) == 3
    assert len(bot.open_questions()) == 2  # both are on the review list all the same


async def test_a_refused_review_post_does_not_cost_the_asker_the_answer(
    review_server: tuple[PolicyBot, str], stub: ConnectorStub, caplog: pytest.LogCaptureFixture
) -> None:
    bot, base = review_server
    stub.refuse_conversations.add(REVIEW)  # e.g. the bot was removed from the team
    with caplog.at_level(logging.ERROR, logger="bot.core"):
        status, _ = await post(base, message(UNCOVERED, stub.url))
        buttons = await answered(base, stub)
        await post(base, card_submit("not_helpful", buttons["Helpful"]["question_id"], stub.url))
        await turns_finished()
    assert status in (200, 201, 202)
    in_chat = stub.in_conversation(PERSONAL["id"])
    assert "does not cover this" in card_text(in_chat[0].card or {})
    assert "review list" in in_chat[-1].text
    assert all(call.text != replies.APOLOGY for call in in_chat)  # no "something went wrong"
    assert len(in_chat) == 3
    assert len(review_posts(stub)) == 2  # each tried once, refused
    failures = [r for r in caplog.records if "teams review channel" in r.getMessage()]
    assert len(failures) == 2
    assert {q.review_reason for q in bot.open_questions()} == {"not_covered", "not_helpful"}


def test_the_review_conversation_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).teams_review_conversation == ""
    settings = Settings.from_env({"POLICYBOT_TEAMS_REVIEW_CONVERSATION": f" {REVIEW} "})
    assert settings.teams_review_conversation == REVIEW


# -- answering and dismissing from the channel's card ------------------------------------------
ANSWER = "The cafeteria opens at 7:30; Facilities posts holiday hours on the intranet."


@pytest.fixture
async def team_server(
    bot_with: Callable[..., PolicyBot], review_options: dict[str, Any], stub: ConnectorStub
) -> AsyncIterator[tuple[PolicyBot, str, Call]]:
    """Pat is on the policy team; Alice's uncovered question has been posted to the channel."""
    bot = bot_with(teams_policy_team=("aad-pat",), **review_options)
    async with serving(build_app(bot, host=LOOPBACK)) as base:
        await post(base, message(UNCOVERED, stub.url))
        await stub.received(2)
        (notice,) = review_posts(stub)
        yield bot, base, notice


def thread(notice: Call) -> str:
    """The conversation of the card's thread, as Teams names it in activities from there."""
    return f"{REVIEW};messageid={notice.id}"


def pressed(
    notice: Call, button: str, url: str, *, sender: dict[str, Any] = PAT, **inputs: str
) -> dict[str, Any]:
    """A press on the review-channel card's button, as Teams posts it: from the card's thread,
    in reply to the card, with the card's inputs."""
    channel = {"id": thread(notice), "conversationType": "channel", "isGroup": True}
    activity = submit(
        {**submit_data(notice.card or {})[button], **inputs},
        url,
        sender=sender,
        conversation=channel,
    )
    activity["replyToId"] = notice.id
    return activity


async def test_answer_on_the_channel_card_reaches_the_asker_and_settles_the_card(
    team_server: tuple[PolicyBot, str, Call], stub: ConnectorStub
) -> None:
    bot, base, notice = team_server
    rows = bot.open_questions()
    (question,) = rows
    before = len(stub.calls)
    await post(base, pressed(notice, "Answer", stub.url, answer=ANSWER))
    delivered, settled, confirmation = (await stub.received(before + 3))[before:]

    # Alice is sent the answer in her own chat, as a new message: the existing delivery path.
    assert delivered.conversation_id == PERSONAL["id"]
    assert delivered.method == "POST" and delivered.activity_id == ""
    assert delivered.text.startswith("You asked: “") and ANSWER in delivered.text

    # The card in the channel is replaced: how it was handled, and nothing left to press.
    assert settled.method == "PUT" and settled.conversation_id == thread(notice)
    assert settled.activity_id == notice.id
    card = settled.card or {}
    text = card_text(card)
    assert f"“{UNCOVERED}”" in text
    assert facts(card) == facts(notice.card or {})  # why, question and group, as posted
    assert f"Answered by Pat Policy (teams:aad-pat) (group #{question.group_id}" in text
    assert ANSWER in text
    assert "actions" not in card and "Input.Text" not in str(card)

    # The reviewers read the outcome in the card's thread.
    assert confirmation.method == "POST" and confirmation.conversation_id == thread(notice)
    assert f"Group #{question.group_id} answered" in confirmation.text
    assert "1 sent, 0 pending" in confirmation.text

    group = bot.review.group(question.group_id or 0)
    assert group.status == "answered" and group.answer == ANSWER
    assert group.answered_by == "Pat Policy (teams:aad-pat)"
    assert bot.open_questions() == []
    assert len(stub.calls) == before + 3


async def test_someone_outside_the_policy_team_is_refused_and_logged(
    team_server: tuple[PolicyBot, str, Call],
    stub: ConnectorStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot, base, notice = team_server
    before = len(stub.calls)
    with caplog.at_level(logging.WARNING, logger="policybot.security"):
        await post(base, pressed(notice, "Answer", stub.url, sender=BOB, answer="Never."))
        await post(base, pressed(notice, "Dismiss", stub.url, sender=BOB))
    refusals = (await stub.received(before + 2))[before:]
    for refusal in refusals:  # in the card's thread; the card itself is left alone
        assert refusal.method == "POST" and refusal.conversation_id == thread(notice)
        assert refusal.text == messages.NOT_POLICY_TEAM_ACTION
    assert len(stub.calls) == before + 2  # nothing went to Alice, no card was edited
    logged = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
    assert logged == [
        "refused review answer_group: platform=teams who=aad-bob reason=not in the policy team",
        "refused review dismiss_group: platform=teams who=aad-bob reason=not in the policy team",
    ]
    rows = bot.open_questions()
    (question,) = rows
    assert bot.review.group(question.group_id or 0).status == "open"


async def test_dismiss_on_the_channel_card_tells_nobody_and_settles_the_card(
    team_server: tuple[PolicyBot, str, Call], stub: ConnectorStub
) -> None:
    bot, base, notice = team_server
    rows = bot.open_questions()
    (question,) = rows
    before = len(stub.calls)
    await post(base, pressed(notice, "Dismiss", stub.url))
    settled, confirmation = (await stub.received(before + 2))[before:]
    assert settled.method == "PUT" and settled.activity_id == notice.id
    assert "Dismissed by Pat Policy (teams:aad-pat)" in card_text(settled.card or {})
    assert "actions" not in (settled.card or {})
    assert confirmation.conversation_id == thread(notice)
    assert f"Group #{question.group_id} dismissed" in confirmation.text
    assert len(stub.in_conversation(PERSONAL["id"])) == 1  # Alice heard only her answer
    assert len(stub.calls) == before + 2
    assert bot.review.group(question.group_id or 0).status == "dismissed"


async def test_an_empty_answer_changes_nothing_and_an_uneditable_card_still_gets_the_reply(
    team_server: tuple[PolicyBot, str, Call], stub: ConnectorStub
) -> None:
    bot, base, notice = team_server
    rows = bot.open_questions()
    (question,) = rows
    before = len(stub.calls)
    await post(base, pressed(notice, "Answer", stub.url, answer="   "))
    (empty,) = (await stub.received(before + 1))[before:]
    assert empty.conversation_id == thread(notice) and "answer is empty" in empty.text
    assert bot.review.group(question.group_id or 0).status == "open"

    stub.refuse_updates = True  # a client that cannot edit messages
    await post(base, pressed(notice, "Answer", stub.url, answer=ANSWER))
    delivered, refused_edit, confirmation = (await stub.received(before + 4))[before + 1 :]
    assert ANSWER in delivered.text and delivered.conversation_id == PERSONAL["id"]
    assert refused_edit.method == "PUT"
    assert confirmation.method == "POST" and "1 sent, 0 pending" in confirmation.text
    assert all(call.text != replies.APOLOGY for call in stub.calls)
    assert bot.review.group(question.group_id or 0).status == "answered"
