"""/policy, the answer's buttons, the message shortcut, App Home and the notifier."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.slack import blocks as render
from bot import messages
from bot.config import Settings
from bot.models import IncomingQuestion
from bot.notify import ReplyAddress
from tests.fakes.slack_harness import SlackHarness, action_ids, all_text, slack_server

ROADMAP = "may I share our unreleased roadmap on LinkedIn?"


@pytest.fixture
def slack_options() -> dict[str, Any]:
    return {"slack_review_channel": "CREVIEW", "slack_policy_team": ("UTEAM",)}


def button_ids(blocks: list[dict[str, Any]]) -> set[str]:
    return action_ids(blocks)


async def test_policy_command_acks_then_answers_privately_with_a_share_button(
    slack: SlackHarness,
) -> None:
    response = await slack.command(ROADMAP)
    assert response.status_code == 200 and response.text == ""
    (reply,) = await slack.api.wait_for("response_url:command")
    assert reply["response_type"] == "ephemeral"
    assert "3.3" in all_text(reply["blocks"])
    assert render.ACTION_SHARE in button_ids(reply["blocks"])
    row = slack.bot.storage.questions(status=None)[0]
    assert row.text == ROADMAP
    # Private question: a later follow-up goes by DM, not into the channel.
    stored = slack.bot.storage.reply_address(row.id)
    assert stored is not None and stored["conversation"] == ""


@pytest.mark.parametrize("text", ["help", "", "  HELP "])
async def test_policy_help_lists_what_the_bot_does(slack: SlackHarness, text: str) -> None:
    response = await slack.command(text)
    assert response.status_code == 200
    assert "Check this post against the policy" in response.text
    assert slack.bot.storage.questions(status=None) == []


async def test_refused_question_gets_its_reason(slack: SlackHarness) -> None:
    await slack.command("may I post " * 400)
    (reply,) = await slack.api.wait_for("response_url:command")
    assert "characters long" in reply["text"]


async def test_share_in_channel_posts_the_answer_publicly_and_removes_the_private_one(
    slack: SlackHarness,
) -> None:
    answer = await slack.bot.ask(IncomingQuestion(ROADMAP, platform="slack", asker="U123"))
    url = slack.api.response_url("share")
    response = await slack.click(render.ACTION_SHARE, str(answer.question_id), response_url=url)
    assert response.status_code == 200
    shared, deleted = await slack.api.wait_for("response_url:share", 2)
    assert shared["response_type"] == "in_channel"
    text = all_text(shared["blocks"])
    assert "<@U123> asked" in text and "3.3" in text and not button_ids(shared["blocks"])
    assert answer.citations[0].text[:60] in text
    assert deleted["delete_original"] is True


async def test_helpful_is_recorded_and_confirmed(slack: SlackHarness) -> None:
    answer = await slack.bot.ask(IncomingQuestion(ROADMAP))
    url = slack.api.response_url("thanks")
    await slack.click(render.ACTION_HELPFUL, str(answer.question_id), response_url=url)
    (note,) = await slack.api.wait_for("response_url:thanks")
    assert (
        note["response_type"] == "ephemeral" and messages.REACTION_NOTES["helpful"] in note["text"]
    )
    assert slack.bot.storage.question(answer.question_id or 0).feedback == "helpful"
    assert slack.api["chat.postMessage"] == []  # nothing for the policy team


@pytest.mark.parametrize(
    ("action_id", "reason"),
    [(render.ACTION_NOT_HELPFUL, "not_helpful"), (render.ACTION_ESCALATE, "ask_policy_team")],
)
async def test_not_helpful_and_ask_the_team_go_on_the_review_list(
    slack: SlackHarness, action_id: str, reason: str
) -> None:
    answer = await slack.bot.ask(IncomingQuestion(ROADMAP))
    # A button in a DM message without a response_url: the note comes as an ephemeral message.
    await slack.click(action_id, str(answer.question_id), channel="D123")
    (note,) = await slack.api.wait_for("chat.postEphemeral")
    assert note["channel"] == "D123" and note["user"] == "U123"
    assert "policy team" in note["text"]
    (review,) = await slack.api.wait_for("chat.postMessage")
    assert review["channel"] == "CREVIEW" and "roadmap" in all_text(review["blocks"])
    assert [(q.id, q.review_reason) for q in slack.bot.open_questions()] == [
        (answer.question_id, reason)
    ]


async def test_a_click_on_an_unknown_question_says_so(slack: SlackHarness) -> None:
    url = slack.api.response_url("unknown")
    await slack.click(render.ACTION_ESCALATE, "999999", response_url=url)
    (note,) = await slack.api.wait_for("response_url:unknown")
    assert messages.STALE_QUESTION in note["text"]
    assert slack.bot.open_questions() == []


async def test_check_post_shortcut_lists_the_clauses_that_apply(slack: SlackHarness) -> None:
    post = "So excited: our new tracking app is launching next month, it's still under wraps!"
    response = await slack.shortcut(post)
    assert response.status_code == 200
    (reply,) = await slack.api.wait_for("response_url:shortcut")
    assert reply["response_type"] == "ephemeral"
    text = all_text(reply["blocks"])
    assert "3.3" in text and "Unreleased services" in text
    assert slack.bot.storage.questions(status=None) == []  # drafts are not logged


async def test_check_post_shortcut_says_when_nothing_applies(slack: SlackHarness) -> None:
    await slack.shortcut("Lovely weather today.")
    (reply,) = await slack.api.wait_for("response_url:shortcut")
    assert "Nothing in the policy" in reply["text"]


async def test_check_post_shortcut_on_an_empty_message(slack: SlackHarness) -> None:
    await slack.shortcut("")
    (reply,) = await slack.api.wait_for("response_url:shortcut")
    assert "no text to check" in reply["text"]


def home_opened(user: str) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"}


async def test_app_home_shows_usage_and_the_active_policy(slack: SlackHarness) -> None:
    await slack.bot.ask(IncomingQuestion("what time does the cafeteria open?"))
    await slack.event(home_opened("U123"))
    (publish,) = await slack.api.wait_for("views.publish")
    assert publish["user_id"] == "U123"
    text = all_text(publish["view"]["blocks"])
    version = slack.bot.storage.active_versions()[0]
    assert version.display in text and version.activated_at[:10] in text
    assert "/policy" in text and "cafeteria" not in text


async def test_app_home_shows_open_questions_to_the_policy_team(slack: SlackHarness) -> None:
    await slack.bot.ask(IncomingQuestion("what time does the cafeteria open <!here>?"))
    await slack.event(home_opened("UTEAM"))
    (publish,) = await slack.api.wait_for("views.publish")
    text = all_text(publish["view"]["blocks"])
    assert "Open questions" in text and "cafeteria" in text
    assert "&lt;!here&gt;" in text and "<!here>" not in text


async def test_app_home_policy_team_by_user_group(settings: Settings) -> None:
    async with slack_server(settings, slack_policy_team_group="S0TEAM") as slack:
        slack.api.group_members = ["UGROUP"]
        await slack.event(home_opened("UGROUP"))
        await slack.event(home_opened("UOTHER"))
        publishes = await slack.api.wait_for("views.publish", 2)
        seen = {p["user_id"]: "Open questions" in all_text(p["view"]["blocks"]) for p in publishes}
        assert seen == {"UGROUP": True, "UOTHER": False}
        lookups = slack.api["usergroups.users.list"]
        assert lookups and all(c["usergroup"] == "S0TEAM" for c in lookups)


async def test_messages_tab_does_not_publish_a_home(slack: SlackHarness) -> None:
    await slack.event({**home_opened("U123"), "tab": "messages"})
    await slack.event(home_opened("U456"))
    (publish,) = await slack.api.wait_for("views.publish")
    assert publish["user_id"] == "U456"


async def test_notifier_messages_askers_where_they_asked(slack: SlackHarness) -> None:
    notifier = slack.bot.notifiers["slack"]
    await notifier.send(ReplyAddress("slack", "U123", ""), "The policy team answered.")
    await notifier.send(ReplyAddress("slack", "U123", "C100/1700000001.000100"), "Update.")
    (opened,) = slack.api["conversations.open"]
    assert opened["users"] == "U123"
    first, second = slack.api["chat.postMessage"]
    assert first["channel"] == "D123" and first["text"] == "The policy team answered."
    assert second["channel"] == "C100" and second["thread_ts"] == "1700000001.000100"


async def test_notifier_reports_a_refusal_as_a_delivery_error(slack: SlackHarness) -> None:
    from bot.notify import DeliveryError

    slack.api.overrides["chat.postMessage"] = {"ok": False, "error": "channel_not_found"}
    with pytest.raises(DeliveryError, match="channel_not_found"):
        await slack.bot.notifiers["slack"].send(ReplyAddress("slack", "U1", "C9"), "hi")


async def test_digest_poster_posts_to_the_digest_channel(settings: Settings) -> None:
    async with slack_server(settings, digest_slack_channel="CDIGEST") as slack:
        await slack.bot.channel_posters["slack"].post("This week: 3 questions.")
        (post,) = slack.api["chat.postMessage"]
        assert post["channel"] == "CDIGEST" and post["text"] == "This week: 3 questions."


async def test_url_verification_echoes_the_challenge(slack: SlackHarness) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
    response = await slack.post(body, "application/json")
    assert response.status_code == 200 and "abc123" in response.text
