"""Microsoft Teams: Bot Framework activities in, core calls, Adaptive Cards out.

`add_routes` mounts `POST /api/messages` on the shared aiohttp app. A message in a personal
chat, or one that @mentions the bot in a channel or group chat, becomes an IncomingQuestion;
the card's buttons come back as message activities whose `value` carries the question id.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from botbuilder.core import ActivityHandler, CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ChannelAccount, ConversationReference

from adapters import teams_cards
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Answer, IncomingQuestion, QuestionError
from bot.notify import DeliveryError, ReplyAddress

log = logging.getLogger(__name__)

PLATFORM = "teams"
ROUTE = "/api/messages"

#: An answer slower than this (seconds) gets a "Thinking…" placeholder that is replaced later.
PLACEHOLDER_AFTER = 1.0
THINKING = "Thinking…"

HELP = (
    "Ask me whether something is OK under our social media and electronic-communication "
    "policy, for example: *may I post photos from the team offsite on Instagram?* "
    "I answer by quoting the policy's own clauses with their section numbers.\n\n"
    "In a channel or group chat, @mention me with your question. Under each answer, "
    "**Helpful** / **Not helpful** tell the policy team how I did, and **Ask the policy team** "
    "sends your question to them. What the policy does not cover goes to them as well.\n\n"
    "Commands: `help` (this message); `review` (the open questions, for the policy team)."
)
WELCOME = "Hi, I'm the policy bot. " + HELP
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
STALE_BUTTON = "That button no longer matches a question I know. Please ask your question again."
CONFIRMATIONS = {
    teams_cards.HELPFUL: "Thanks, noted.",
    teams_cards.NOT_HELPFUL: (
        "Sorry it didn't help. I've put your question on the policy team's review list."
    ),
    teams_cards.ASK_POLICY_TEAM: ("Sent to the policy team. They will follow up with you here."),
}
NOT_POLICY_TEAM = (
    "Sorry, `review` is for the policy team. If you think you should have it, ask your "
    "administrator to add you to POLICYBOT_TEAMS_POLICY_TEAM."
)
REVIEW_IN_PERSONAL_CHAT = (
    "The review list is for the policy team's eyes only; ask me `review` in a personal chat."
)

_AT_TAG = re.compile(r"</?at>", re.IGNORECASE)


@dataclass(frozen=True)
class BotFrameworkConfig:
    """Our settings under the attribute names the Bot Framework's configuration readers expect."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str


def bot_framework_config(settings: Settings) -> BotFrameworkConfig:
    return BotFrameworkConfig(
        APP_ID=settings.microsoft_app_id,
        APP_PASSWORD=settings.microsoft_app_password,
        APP_TYPE=settings.microsoft_app_type,
        APP_TENANTID=settings.microsoft_app_tenant_id,
    )


def create_adapter(settings: Settings) -> CloudAdapter:
    """A CloudAdapter that checks tokens for MicrosoftAppId, or none when it is unset."""
    auth = ConfigurationBotFrameworkAuthentication(bot_framework_config(settings))
    adapter = CloudAdapter(auth)

    async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
        log.error("Teams turn failed", exc_info=error)
        try:
            await turn_context.send_activity(SORRY)
        except Exception:  # the connector itself may be what failed; the log has the cause
            log.exception("could not tell the Teams user about the failure")

    adapter.on_turn_error = on_turn_error
    return adapter


# -- reading activities ------------------------------------------------------------------------
def is_personal(activity: Activity) -> bool:
    conversation = activity.conversation
    kind = getattr(conversation, "conversation_type", None) if conversation else None
    return kind in (None, "", "personal")


def mentions_recipient(activity: Activity) -> list[dict[str, Any]]:
    """The mention entities that name this bot."""
    recipient_id = activity.recipient.id if activity.recipient else None
    found = []
    for entity in activity.entities or []:
        if (entity.type or "").lower() != "mention":
            continue
        properties = entity.additional_properties or {}
        mentioned = properties.get("mentioned") or {}
        if recipient_id and mentioned.get("id") == recipient_id:
            found.append(properties)
    return found


def addressed_to_bot(activity: Activity) -> bool:
    """Personal chat always; channels and group chats only when the bot is @mentioned."""
    return is_personal(activity) or bool(mentions_recipient(activity))


def question_text(activity: Activity) -> str:
    """The message without the bot's @mention; other people's mentions keep their names."""
    text = activity.text or ""
    for mention in mentions_recipient(activity):
        mention_text = mention.get("text") or ""
        if mention_text:
            text = text.replace(mention_text, " ")
    return " ".join(html.unescape(_AT_TAG.sub("", text)).split())


def conversation_reference_json(activity: Activity) -> str:
    """What the core stores to reply later (proactively) in the same conversation."""
    reference = TurnContext.get_conversation_reference(activity)
    return json.dumps(reference.serialize(), sort_keys=True)


def card_activity(content: dict[str, Any], summary: str) -> Activity:
    reply = MessageFactory.attachment(CardFactory.adaptive_card(content))
    reply.summary = summary
    return reply


def answer_activity(answer: Answer) -> Activity:
    return card_activity(teams_cards.answer_card(answer), teams_cards.answer_summary(answer))


async def reply_when_ready(
    turn_context: TurnContext, pending: Awaitable[Activity], placeholder_after: float
) -> None:
    """Send the reply; if it is not ready in time, send a placeholder and replace it later."""
    task = asyncio.ensure_future(pending)
    done, _ = await asyncio.wait({task}, timeout=placeholder_after)
    if done:
        await turn_context.send_activity(task.result())
        return
    placeholder = await turn_context.send_activity(MessageFactory.text(THINKING))
    try:
        reply = await task
    except Exception:
        log.exception("Teams answer failed after the placeholder was sent")
        reply = MessageFactory.text(SORRY)
    if placeholder is not None and placeholder.id:
        reply.id = placeholder.id
        try:
            await turn_context.update_activity(reply)
            return
        except Exception:  # some clients cannot edit messages; a second message still answers
            log.warning("could not replace the Teams placeholder; sending a new message")
    await turn_context.send_activity(reply)


# -- the bot -----------------------------------------------------------------------------------
class TeamsBot(ActivityHandler):
    """Translates Teams turns into PolicyBot calls; one per app, built in `add_routes`."""

    def __init__(self, policy_bot: PolicyBot, *, placeholder_after: float = PLACEHOLDER_AFTER):
        self.policy_bot = policy_bot
        self.placeholder_after = placeholder_after

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict) and teams_cards.SUBMIT_KEY in activity.value:
            await self.on_card_action(turn_context, activity.value)
            return
        if not addressed_to_bot(activity):
            return  # channel chatter the bot was not asked about
        text = question_text(activity)
        command = text.lower().lstrip("/")
        if command in ("", "help", "?"):
            await turn_context.send_activity(MessageFactory.text(HELP))
        elif command == "review":
            await self.on_review(turn_context)
        else:
            await self.on_question(turn_context, text)

    async def on_question(self, turn_context: TurnContext, text: str) -> None:
        activity = turn_context.activity
        sender = activity.from_property or ChannelAccount()
        incoming = IncomingQuestion(
            text=text,
            platform=PLATFORM,
            asker=sender.id or "",
            conversation=conversation_reference_json(activity),
            asker_name=sender.name or "",
        )

        async def reply() -> Activity:
            try:
                answer = await self.policy_bot.ask(incoming)
            except QuestionError as error:
                return MessageFactory.text(str(error))
            return answer_activity(answer)

        await reply_when_ready(turn_context, reply(), self.placeholder_after)

    async def on_card_action(self, turn_context: TurnContext, value: dict[str, Any]) -> None:
        action = value.get(teams_cards.SUBMIT_KEY)
        question_id = parse_question_id(value.get("question_id"))
        if action not in teams_cards.ACTIONS or question_id is None:
            await turn_context.send_activity(MessageFactory.text(STALE_BUTTON))
            return
        try:
            if action == teams_cards.ASK_POLICY_TEAM:
                self.policy_bot.escalate(question_id)
            else:
                self.policy_bot.feedback(question_id, helpful=action == teams_cards.HELPFUL)
        except KeyError:
            await turn_context.send_activity(MessageFactory.text(STALE_BUTTON))
            return
        await turn_context.send_activity(MessageFactory.text(CONFIRMATIONS[str(action)]))

    async def on_review(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        sender = activity.from_property or ChannelAccount()
        if not sender.aad_object_id or (
            sender.aad_object_id not in self.policy_bot.settings.teams_policy_team
        ):
            await turn_context.send_activity(MessageFactory.text(NOT_POLICY_TEAM))
            return
        if not is_personal(activity):
            await turn_context.send_activity(MessageFactory.text(REVIEW_IN_PERSONAL_CHAT))
            return
        questions = self.policy_bot.open_questions()
        summary = f"{len(questions)} open questions"
        await turn_context.send_activity(card_activity(teams_cards.review_card(questions), summary))

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        # One welcome per install: when the bot joins a conversation, or a person starts a
        # personal chat with it. New teammates joining a team are not greeted in the channel.
        activity = turn_context.activity
        recipient_id = activity.recipient.id if activity.recipient else None
        bot_added = any(member.id == recipient_id for member in members_added)
        people_added = any(member.id != recipient_id for member in members_added)
        if bot_added or (people_added and is_personal(activity)):
            await turn_context.send_activity(MessageFactory.text(WELCOME))


def parse_question_id(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw > 0 else None
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    return None


# -- proactive messages ------------------------------------------------------------------------
class TeamsNotifier:
    """Messages an asker later (a reviewed answer, say) via the stored conversation reference."""

    def __init__(self, adapter: CloudAdapter, app_id: str) -> None:
        self.adapter = adapter
        self.app_id = app_id

    async def send(self, address: ReplyAddress, text: str) -> None:
        try:
            reference = ConversationReference().deserialize(json.loads(address.conversation))
        except (ValueError, TypeError) as error:
            raise DeliveryError(f"no usable Teams conversation reference: {error}") from None
        if not reference.service_url or not reference.conversation:
            raise DeliveryError("the Teams conversation reference has no service URL")

        failures: list[Exception] = []

        async def deliver(turn_context: TurnContext) -> None:
            # Caught here: an error escaping the turn would go to the adapter's on_turn_error,
            # which tells the user "something went wrong" and hides the failure from the caller.
            try:
                await turn_context.send_activity(MessageFactory.text(text))
            except Exception as error:  # the connector raises many unrelated types
                failures.append(error)

        try:
            await self.adapter.continue_conversation(reference, deliver, self.app_id)
        except Exception as error:  # e.g. no credentials could be had for the service URL
            failures.append(error)
        if failures:
            raise DeliveryError(f"Teams did not take the message: {failures[0]}") from failures[0]


# -- HTTP --------------------------------------------------------------------------------------
def is_loopback(url: object) -> bool:
    host = urlsplit(url).hostname if isinstance(url, str) else None
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def add_routes(
    app: web.Application, bot: PolicyBot, *, placeholder_after: float = PLACEHOLDER_AFTER
) -> None:
    """Mount `POST /api/messages` and register the Teams notifier with the core."""
    settings = bot.settings
    adapter = create_adapter(settings)
    teams_bot = TeamsBot(bot, placeholder_after=placeholder_after)
    bot.notifiers[PLATFORM] = TeamsNotifier(adapter, settings.microsoft_app_id)
    authenticated = bool(settings.microsoft_app_id)
    if not authenticated:
        log.warning(
            "MicrosoftAppId is not set: %s accepts UNAUTHENTICATED requests and replies only to "
            "service URLs on this machine. Set MicrosoftAppId for Teams.",
            ROUTE,
        )

    async def messages(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return error(415, "send the Bot Framework activity as application/json")
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body is not valid JSON")
        if not isinstance(body, dict) or not body.get("type"):
            return error(400, "the body is not a Bot Framework activity (no type)")
        if not authenticated and not is_loopback(body.get("serviceUrl")):
            # Without tokens anyone could make the bot call any URL; keep that to local tests.
            return error(403, "unauthenticated mode only replies to a serviceUrl on loopback")
        response = await adapter.process(request, teams_bot)
        return response if response is not None else web.Response(status=201)

    app.router.add_post(ROUTE, messages)
