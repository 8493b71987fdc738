"""The Teams bot's turn logic, driven through an in-process Agents SDK adapter (no HTTP)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from microsoft_agents.activity import Activity, ChannelAccount, Entity

from adapters.teams import asking, handler, turns
from bot import messages
from bot.core import PolicyBot
from tests.fakes.answerers import GatedAnswerer
from tests.fakes.recording_adapter import RecordingTestAdapter, account, conversation
from tests.fakes.teams_activities import ALICE, BOT, GROUP_CHAT, PAT

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def adapter_for(bot: PolicyBot, **options: float) -> RecordingTestAdapter:
    return RecordingTestAdapter(handler.TeamsBot(bot, **options).on_turn)


def mention(data: dict[str, str]) -> Entity:
    return Entity.model_validate(
        {"type": "mention", "text": f"<at>{data['name']}</at>", "mentioned": data}
    )


async def test_personal_question_gets_a_card_and_is_logged_with_a_reply_address(
    bot: PolicyBot,
) -> None:
    adapter = adapter_for(bot)
    await adapter.receive_activity("can I tweet about our quarterly revenue?")
    (reply,) = adapter.activity_buffer
    (attachment,) = reply.attachments
    assert attachment.content_type == ADAPTIVE_CARD
    (logged,) = bot.storage.questions(status=None)
    assert reply.summary == logged.answer_text
    assert logged.platform == "teams"
    address = bot.storage.reply_address(logged.id)
    assert address is not None and address["user_id"] == ALICE["id"]
    reference = json.loads(address["conversation"])
    assert reference["conversation"]["id"] == adapter.template.conversation.id
    assert reference["user"]["id"] == ALICE["id"] and reference["bot"]["id"] == BOT["id"]


async def test_help_and_a_bare_mention_explain_the_bot(bot: PolicyBot) -> None:
    adapter = adapter_for(bot)
    await adapter.receive_activity("help")
    await adapter.receive_activity("  HELP ")
    bare_mention = Activity(
        type="message",
        text="<at>PolicyBot</at>",
        entities=[mention(BOT)],
        conversation=conversation(GROUP_CHAT),
    )
    await adapter.receive_activity(bare_mention)
    assert "@mention" in asking.HELP and "review" in asking.HELP
    assert [reply.text for reply in adapter.activity_buffer] == [asking.help_text(bot)] * 3
    # The example is about the active policy's own sections, not a hard-coded offsite.
    assert bot.example_question() in (adapter.activity_buffer[0].text or "")
    assert "offsite" not in (adapter.activity_buffer[0].text or "")
    assert bot.storage.questions(status=None) == []


async def test_mention_in_a_group_chat_is_stripped_and_other_names_kept(bot: PolicyBot) -> None:
    adapter = adapter_for(bot)
    activity = Activity(
        type="message",
        text="<at>PolicyBot</at> may I post a photo of <at>Pat Policy</at> at the offsite&nbsp;party?",
        entities=[mention(BOT), mention(PAT)],
        conversation=conversation(GROUP_CHAT),
    )
    await adapter.receive_activity(activity)
    assert len(adapter.activity_buffer) == 1
    (logged,) = bot.storage.questions(status=None)
    assert logged.text == "may I post a photo of Pat Policy at the offsite party?"


async def test_group_chat_message_mentioning_someone_else_is_ignored(bot: PolicyBot) -> None:
    adapter = adapter_for(bot)
    activity = Activity(
        type="message",
        text="<at>Pat Policy</at> can I tweet this?",
        entities=[mention(PAT)],
        conversation=conversation(GROUP_CHAT),
    )
    await adapter.receive_activity(activity)
    assert adapter.activity_buffer == []
    assert bot.storage.questions(status=None) == []


async def test_not_helpful_submit_confirms_and_opens_the_question(bot: PolicyBot) -> None:
    adapter = adapter_for(bot)
    await adapter.receive_activity("can I friend my boss on facebook?")
    card = cast(dict[str, Any], adapter.activity_buffer[0].attachments[0].content)
    not_helpful = next(a["data"] for a in card["actions"] if a["title"] == "Not helpful")
    await adapter.receive_activity(Activity(type="message", value=not_helpful))
    assert "review list" in (adapter.activity_buffer[1].text or "")
    assert [q.review_reason for q in bot.open_questions()] == ["not_helpful"]


async def test_someone_outside_the_policy_team_is_refused_review(bot: PolicyBot) -> None:
    adapter = adapter_for(bot)
    await adapter.receive_activity("review")
    (reply,) = adapter.activity_buffer
    assert reply.text == messages.NOT_POLICY_TEAM


async def test_welcome_is_for_people_not_for_the_bot_joining_as_a_member(bot: PolicyBot) -> None:
    adapter = adapter_for(bot)
    await adapter.receive_activity(
        Activity(type="conversationUpdate", members_added=[account(ALICE)])
    )
    await adapter.receive_activity(
        Activity(type="conversationUpdate", members_added=[account(ALICE), account(BOT)])
    )
    # In a group chat, a new person is not greeted; the bot's own arrival is (installation).
    await adapter.receive_activity(
        Activity(
            type="conversationUpdate",
            members_added=[ChannelAccount(id="29:bob", name="Bob")],
            conversation=conversation(GROUP_CHAT),
        )
    )
    welcome = asking.help_text(bot, asking.WELCOME)
    assert [a.text for a in adapter.activity_buffer] == [welcome, welcome]


async def test_slow_answer_gets_a_placeholder_that_the_card_replaces(bot: PolicyBot) -> None:
    slow = GatedAnswerer()
    bot.answerer = slow
    adapter = adapter_for(bot, placeholder_after=0.01)
    turn = asyncio.ensure_future(adapter.receive_activity("may I share our roadmap on LinkedIn?"))
    (placeholder,) = await adapter.replies(1)
    assert placeholder.text == messages.THINKING and adapter.updated_activities == []
    slow.release()
    await turn
    (update,) = adapter.updated_activities
    assert update.id == "2"  # numbered as they pass: 1 the question, 2 the placeholder
    assert cast(dict[str, Any], update.attachments[0].content)["type"] == "AdaptiveCard"
    assert len(adapter.activity_buffer) == 1  # replaced, not sent again


def test_question_text_without_any_mention_is_the_text() -> None:
    activity = Activity(type="message", text="  may I\n post   this? ", recipient=account(BOT))
    assert turns.question_text(activity) == "may I post this?"
