"""The policy team reviews in Slack: question groups in App Home and the review channel,
*Answer* opens a modal, submitting it sends the answer to everyone who asked; *Dismiss*;
and everyone else is refused with nothing changed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.slack import blocks as render
from bot import messages
from bot.config import Settings
from tests.fakes.slack_harness import SlackHarness, all_text, slack_server

TEAM_MEMBER = "UTEAM"
DOG = [
    "can I bring my dog to the office",
    "are dogs allowed at the office?",
    "is it ok to have my dog with me at the office",
]
ANSWER = "Dogs are welcome on Fridays in the Leeds office only; register them with Facilities."


@pytest.fixture
def slack_options() -> dict[str, Any]:
    return {"slack_review_channel": "CREVIEW", "slack_policy_team": (TEAM_MEMBER,)}


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def ask_about_dogs(slack: SlackHarness) -> tuple[int, str]:
    """Three employees ask the same uncovered thing: two in DMs, one by @mention in a channel.
    Returns the group id and the mention's thread."""
    await slack.dm(DOG[0], user="U1")
    await slack.dm(DOG[1], user="U2")
    thread = await slack.mention(DOG[2], user="U3", channel="C100")
    # Each gets "not covered", and each question is posted to the review channel.
    await slack.api.wait_for("chat.postMessage", 6)
    (group,) = slack.bot.review.queue()
    assert group.count == 3
    return group.id, thread


async def open_home(slack: SlackHarness, user: str, count: int) -> dict[str, Any]:
    await slack.event({"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"})
    publishes = await slack.api.wait_for("views.publish", count)
    assert publishes[-1]["user_id"] == user
    view: dict[str, Any] = publishes[-1]["view"]
    return view


async def test_answering_a_group_from_app_home_reaches_every_asker(slack: SlackHarness) -> None:
    group_id, thread = await ask_about_dogs(slack)

    home = await open_home(slack, TEAM_MEMBER, 1)
    text = all_text(home["blocks"])
    assert "3 asked" in text and DOG[0] in text and "1 groups, 3 questions" in text
    assert (render.ACTION_ANSWER_GROUP, str(group_id)) in buttons(home["blocks"])
    assert (render.ACTION_DISMISS_GROUP, str(group_id)) in buttons(home["blocks"])
    other = await open_home(slack, "U1", 2)
    assert DOG[0] not in all_text(other["blocks"]) and not buttons(other["blocks"])

    await slack.click(render.ACTION_ANSWER_GROUP, str(group_id), user=TEAM_MEMBER, channel=None)
    (opened,) = await slack.api.wait_for("views.open")
    assert opened["trigger_id"] == f"trigger-{TEAM_MEMBER}"
    modal = opened["view"]
    assert modal["callback_id"] == render.ANSWER_VIEW and DOG[0] in all_text(modal["blocks"])

    values = {
        render.ANSWER_BLOCK: {render.ANSWER_INPUT: {"type": "plain_text_input", "value": ANSWER}}
    }
    response = await slack.submit_view(modal, values, user=TEAM_MEMBER)
    assert response.status_code == 200 and response.text == ""  # the modal closes

    # 6 before; then the three askers, and the reviewer's confirmation.
    posts = (await slack.api.wait_for("chat.postMessage", 10))[6:]
    delivered = {(p["channel"], p.get("thread_ts")): p["text"] for p in posts}
    for where, question in zip([("D1", None), ("D2", None), ("C100", thread)], DOG, strict=True):
        assert ANSWER in delivered[where] and question in delivered[where]
    confirmation = delivered[(TEAM_MEMBER, None)]
    assert "3 sent, 0 pending" in confirmation
    group = slack.bot.review.group(group_id)
    assert group.status == "answered" and group.answer == ANSWER
    assert "slack:UTEAM" in group.answered_by

    refreshed = (await slack.api.wait_for("views.publish", 3))[-1]
    assert refreshed["user_id"] == TEAM_MEMBER
    assert "Nothing open" in all_text(refreshed["view"]["blocks"])

    # The bot has learnt the answer: a later similar question gets it.
    await slack.dm("can I bring my dog to work?", user="U4")
    reply = (await slack.api.wait_for("chat.postMessage", 11))[-1]
    assert reply["channel"] == "D4" and ANSWER in reply["text"]


async def test_review_channel_posts_carry_answer_and_dismiss_for_the_group(
    slack: SlackHarness,
) -> None:
    group_id, _ = await ask_about_dogs(slack)
    to_review = [p for p in slack.api["chat.postMessage"] if p["channel"] == "CREVIEW"]
    assert len(to_review) == 3
    for post in to_review:
        assert buttons(post["blocks"]) == [
            (render.ACTION_ANSWER_GROUP, str(group_id)),
            (render.ACTION_DISMISS_GROUP, str(group_id)),
        ]
    # Answer from the channel: the modal remembers where, and the confirmation goes there.
    await slack.click(
        render.ACTION_ANSWER_GROUP, str(group_id), user=TEAM_MEMBER, channel="CREVIEW"
    )
    (opened,) = await slack.api.wait_for("views.open")
    assert json.loads(opened["view"]["private_metadata"]) == {
        "group": group_id,
        "channel": "CREVIEW",
    }
    values = {render.ANSWER_BLOCK: {render.ANSWER_INPUT: {"value": ANSWER}}}
    await slack.submit_view(opened["view"], values, user=TEAM_MEMBER)
    (note,) = await slack.api.wait_for("chat.postEphemeral")
    assert note["channel"] == "CREVIEW" and note["user"] == TEAM_MEMBER
    assert "3 sent" in note["text"]


async def test_dismiss_closes_the_group_and_tells_nobody_else(slack: SlackHarness) -> None:
    group_id, _ = await ask_about_dogs(slack)
    await slack.click(
        render.ACTION_DISMISS_GROUP, str(group_id), user=TEAM_MEMBER, channel="CREVIEW"
    )
    (note,) = await slack.api.wait_for("chat.postEphemeral")
    assert note["user"] == TEAM_MEMBER and messages.group_dismissed(group_id, 3) in note["text"]
    assert slack.bot.review.group(group_id).status == "dismissed"
    (home,) = await slack.api.wait_for("views.publish")
    assert home["user_id"] == TEAM_MEMBER and "Nothing open" in all_text(home["view"]["blocks"])
    assert len(slack.api["chat.postMessage"]) == 6  # no asker was messaged


async def test_a_dismiss_by_user_group_asks_slack_about_the_group_once(
    settings: Settings,
) -> None:
    # The dismissal checks the reviewer, then App Home is redrawn for them: one look-up of
    # the user group serves both.
    async with slack_server(
        settings, slack_review_channel="CREVIEW", slack_policy_team_group="S0TEAM"
    ) as slack:
        slack.api.group_members = ["UGROUP"]
        group_id, _ = await ask_about_dogs(slack)
        await slack.click(
            render.ACTION_DISMISS_GROUP, str(group_id), user="UGROUP", channel="CREVIEW"
        )
        (home,) = await slack.api.wait_for("views.publish")
        assert home["user_id"] == "UGROUP" and "Nothing open" in all_text(home["view"]["blocks"])
        assert slack.bot.review.group(group_id).status == "dismissed"
        assert len(slack.api["usergroups.users.list"]) == 1


async def test_people_outside_the_policy_team_are_refused_and_nothing_changes(
    slack: SlackHarness,
) -> None:
    group_id, _ = await ask_about_dogs(slack)
    for action_id in (render.ACTION_ANSWER_GROUP, render.ACTION_DISMISS_GROUP):
        url = slack.api.response_url(action_id)
        await slack.click(action_id, str(group_id), user="U1", channel="CREVIEW", response_url=url)
        (note,) = await slack.api.wait_for("response_url:" + action_id)
        assert "only members of the policy team" in note["text"]
    assert slack.api["views.open"] == []

    # A submission from someone outside the team (a modal opened before they left it, say).
    modal = render.answer_modal(slack.bot.review.group(group_id), json.dumps({"group": group_id}))
    values = {render.ANSWER_BLOCK: {render.ANSWER_INPUT: {"value": ANSWER}}}
    response = await slack.submit_view(modal, values, user="U1")
    assert response.status_code == 200
    errors = response.json()
    assert errors["response_action"] == "errors"
    assert "policy team" in errors["errors"][render.ANSWER_BLOCK]
    group = slack.bot.review.group(group_id)
    assert group.status == "open" and group.answer == ""
    assert len(slack.api["chat.postMessage"]) == 6  # nobody was sent anything


async def test_an_empty_answer_is_shown_in_the_modal_and_the_group_stays_open(
    slack: SlackHarness,
) -> None:
    group_id, _ = await ask_about_dogs(slack)
    modal = render.answer_modal(slack.bot.review.group(group_id), json.dumps({"group": group_id}))
    values = {render.ANSWER_BLOCK: {render.ANSWER_INPUT: {"value": "   "}}}
    response = await slack.submit_view(modal, values, user=TEAM_MEMBER)
    assert "empty" in response.json()["errors"][render.ANSWER_BLOCK]
    assert slack.bot.review.group(group_id).status == "open"


async def test_a_stale_group_button_says_so(slack: SlackHarness) -> None:
    await slack.click(render.ACTION_ANSWER_GROUP, "9999", user=TEAM_MEMBER, channel=None)
    (note,) = await slack.api.wait_for("chat.postMessage")
    assert note["channel"] == TEAM_MEMBER and "no question group 9999" in note["text"]
    assert slack.api["views.open"] == []


async def test_answer_opens_prefilled_for_an_answered_group(slack: SlackHarness) -> None:
    group_id, _ = await ask_about_dogs(slack)
    slack.bot.review.answer(group_id, ANSWER, "cli")
    await slack.click(render.ACTION_ANSWER_GROUP, str(group_id), user=TEAM_MEMBER, channel=None)
    (opened,) = await slack.api.wait_for("views.open")
    (field,) = [b for b in opened["view"]["blocks"] if b["type"] == "input"]
    assert field["element"]["initial_value"] == ANSWER
    assert "Already answered" in all_text(opened["view"]["blocks"])
