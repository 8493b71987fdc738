"""Microsoft Teams: Bot Framework activities in, core calls, Adaptive Cards out.

`add_routes` mounts `POST /api/messages` on the shared aiohttp app. A message in a personal
chat, or one that @mentions the bot in a channel or group chat, becomes an IncomingQuestion;
the card's buttons come back as message activities whose `value` carries the question id.
A file attached in a personal chat is a policy upload (admins only); `review` lists the open
question groups for the policy team with answer boxes.
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
from aiohttp import web
from botbuilder.core import ActivityHandler, CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
)
from yarl import URL

from adapters import replies
from adapters.downloads import DOWNLOAD_TIMEOUT, DownloadError, TooLarge, download
from adapters.replies import APOLOGY, reply_in_time
from adapters.teams import auth as teams_auth
from adapters.teams import cards as teams_cards
from bot import access
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import Actor, Answer, IncomingQuestion, PolicyError
from bot.notify import DeliveryError, ReplyAddress, ReviewNotice
from bot.policies import ACTIVATE, DISCARD, too_large
from bot.review.queue import Group, ReviewError, may_review

log = logging.getLogger(__name__)

PLATFORM = "teams"
ROUTE = "/api/messages"

THINKING = "Thinking…"

HELP = (
    "Ask me whether something is OK under our social media and electronic-communication "
    "policy, for example: *may I post photos from the team offsite on Instagram?* "
    "I answer by quoting the policy's own clauses with their section numbers.\n\n"
    "In a channel or group chat, @mention me with your question. Under each answer, "
    "**Helpful** / **Not helpful** tell the policy team how I did, and **Ask the policy team** "
    "sends your question to them. What the policy does not cover goes to them as well.\n\n"
    "Commands: `help` (this message); `review` (the open question groups, for the policy "
    "team). Policy admins can attach a policy file in a personal chat with me to upload a new "
    "version."
)
WELCOME = "Hi, I'm the policy bot. " + HELP
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
NOT_POLICY_TEAM_ACTION = (
    "Sorry, answering and dismissing questions is for the policy team; nothing was changed. "
    "If you think you should be able to, ask your administrator to add you to "
    "POLICYBOT_TEAMS_POLICY_TEAM."
)
REVIEW_IN_PERSONAL_CHAT = (
    "The review list is for the policy team's eyes only; ask me `review` in a personal chat."
)
STALE_GROUP = "That card no longer matches a question group. Send `review` for the current list."

#: How Teams hands a bot a file attached in a personal chat (`content.downloadUrl`).
FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
#: Attachments that are part of a message itself (its HTML, a card, a pasted picture), never
#: a policy file, even when they carry a contentUrl.
_NOT_FILES = ("text/html", "application/vnd.microsoft.card.", "image/")

#: The upload card's buttons, as the core's actions on a policy version.
VERSION_ACTIONS = {
    teams_cards.ACTIVATE_VERSION: ACTIVATE,
    teams_cards.DISCARD_VERSION: DISCARD,
}

_AT_TAG = re.compile(r"</?at>", re.IGNORECASE)

T = TypeVar("T")


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
    """A CloudAdapter whose incoming tokens `teams_auth` checks for MicrosoftAppId (none are
    checked when it is unset); replies get botbuilder's credentials from the app password."""
    keys = teams_auth.SigningKeys(
        settings.teams_openid_metadata_url, timeout=teams_auth.FETCH_TIMEOUT
    )
    auth = teams_auth.CheckedBotFrameworkAuthentication(
        settings.microsoft_app_id,
        ConfigurationBotFrameworkAuthentication(bot_framework_config(settings)),
        keys,
    )
    adapter = CloudAdapter(auth)

    async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
        log.error("Teams turn failed", exc_info=error)
        try:
            await turn_context.send_activity(APOLOGY)
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


@dataclass
class TurnReply:
    """A reply in the turn's conversation; replacing it edits the message (update_activity)."""

    turn_context: TurnContext
    sent_id: str | None = None

    async def post(self, activity: Activity) -> None:
        sent = await self.turn_context.send_activity(activity)
        self.sent_id = sent.id if sent is not None else None

    async def replace(self, activity: Activity) -> None:
        if not self.sent_id:
            await self.post(activity)
            return
        activity.id = self.sent_id
        await self.turn_context.update_activity(activity)


@dataclass(frozen=True)
class AttachedFile:
    name: str
    url: str


def attached_files(activity: Activity) -> list[AttachedFile]:
    """Files sent with a message: Teams' download-info attachments (a pre-authorized
    `downloadUrl`), or other attachments with a `contentUrl` (the Emulator, Web Chat)."""
    files = []
    for attachment in activity.attachments or []:
        kind = (attachment.content_type or "").lower()
        content = attachment.content if isinstance(attachment.content, dict) else {}
        name = str(attachment.name or "")
        if kind == FILE_DOWNLOAD_INFO:
            url = str(content.get("downloadUrl") or "")
            file_type = str(content.get("fileType") or "")
            if file_type and "." not in name:
                name = f"{name}.{file_type}"
        elif attachment.content_url and not kind.startswith(_NOT_FILES):
            url = str(attachment.content_url)
        else:
            continue
        files.append(AttachedFile(name, url))
    return files


def actor(sender: ChannelAccount) -> Actor:
    """An admin or reviewer: known to the core by their AAD object id, recorded with the name."""
    return Actor(PLATFORM, sender.aad_object_id or "", sender.name or "")


def text_activity(text: str) -> Activity:
    return MessageFactory.text(text)


# -- the bot -----------------------------------------------------------------------------------
class TeamsBot(ActivityHandler):
    """Translates Teams turns into PolicyBot calls; one per app, built in `add_routes`."""

    def __init__(
        self,
        policy_bot: PolicyBot,
        *,
        placeholder_after: float | None = None,
        download_timeout: float = DOWNLOAD_TIMEOUT,
    ):
        self.policy_bot = policy_bot
        self.placeholder_after = (
            replies.THINKING_DELAY if placeholder_after is None else placeholder_after
        )
        self.download_timeout = download_timeout

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict) and teams_cards.SUBMIT_KEY in activity.value:
            await self.on_card_action(turn_context, activity.value)
            return
        if not addressed_to_bot(activity):
            return  # channel chatter the bot was not asked about
        # Teams hands bots files in personal chats only; elsewhere the text is the question.
        files = attached_files(activity) if is_personal(activity) else []
        if files:
            await self.on_upload(turn_context, files)
            return
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

        answer = await self.reply_when_ready(
            turn_context, self.policy_bot.ask(incoming), answer_activity
        )
        if answer is not None:
            await self.policy_bot.refer_unanswered(answer, incoming)

    async def reply_when_ready(
        self,
        turn_context: TurnContext,
        work: Awaitable[T],
        render: Callable[[T], Activity],
    ) -> T | None:
        return await reply_in_time(
            work,
            TurnReply(turn_context),
            render=render,
            text=text_activity,
            thinking=text_activity(THINKING),
            delay=self.placeholder_after,
        )

    async def on_card_action(self, turn_context: TurnContext, value: dict[str, Any]) -> None:
        action = value.get(teams_cards.SUBMIT_KEY)
        if action in teams_cards.VERSION_ACTIONS:
            await self.on_version_action(turn_context, str(action), value)
            return
        if action in teams_cards.GROUP_ACTIONS:
            await self.on_group_action(turn_context, str(action), value)
            return
        question_id = parse_id(value.get("question_id"))
        if action not in teams_cards.ACTIONS or question_id is None:
            await turn_context.send_activity(MessageFactory.text(STALE_BUTTON))
            return
        try:
            referral = self.policy_bot.react(question_id, str(action))  # named as in REACTIONS
        except KeyError:
            await turn_context.send_activity(MessageFactory.text(STALE_BUTTON))
            return
        await turn_context.send_activity(MessageFactory.text(CONFIRMATIONS[str(action)]))
        sender = turn_context.activity.from_property or ChannelAccount()
        await self.policy_bot.announce(PLATFORM, referral, asker=sender.id or "")

    # -- policy administration (POLICYBOT_ADMINS) ---------------------------------------------
    async def on_upload(self, turn_context: TurnContext, files: list[AttachedFile]) -> None:
        """An admin's attached policy file: authorized before anything is downloaded."""
        uploader = actor(turn_context.activity.from_property or ChannelAccount())
        try:
            self.policy_bot.policies.authorize(uploader, action="policy upload")
        except PolicyError as refusal:
            await turn_context.send_activity(text_activity(str(refusal)))
            return
        for file in files:
            upload = self.read_upload(file, uploaded_by=uploader.recorded_as)
            await self.reply_when_ready(turn_context, upload, lambda reply: reply)

    async def read_upload(self, file: AttachedFile, *, uploaded_by: str) -> Activity:
        """Download, hand to the core's upload, and render what the new version would change."""
        limit = self.policy_bot.settings.max_upload_bytes
        name = file.name or "the file"
        unchanged = "Nothing was changed; the active policy is as it was."
        if not (file.url.startswith("https://") or is_loopback(file.url)):
            return text_activity(f"I could not download {name}: Teams gave no HTTPS link to it.")
        try:
            data = await download(file.url, limit, timeout=self.download_timeout)
        except TooLarge:
            return text_activity(f"{too_large(name, limit)} {unchanged}")
        except DownloadError as error:
            return text_activity(f"I could not download {name}: {error}. {unchanged}")
        try:
            result = await self.policy_bot.policies.upload_in_background(
                file.name, data, uploaded_by=uploaded_by
            )
        except PolicyError as error:
            return text_activity(f"{error} {unchanged}")
        return card_activity(teams_cards.upload_card(result), teams_cards.upload_summary(result))

    async def on_version_action(
        self, turn_context: TurnContext, action: str, value: dict[str, Any]
    ) -> None:
        """Activate / Discard on an upload's card."""
        sender = turn_context.activity.from_property or ChannelAccount()
        try:
            reply = self.policy_bot.policies.settle(
                parse_id(value.get("version_id")), VERSION_ACTIONS[action], actor(sender)
            ).outcome
        except PolicyError as error:  # not an admin, no such version, not discardable
            reply = str(error)
        await turn_context.send_activity(text_activity(reply))

    # -- the review loop (POLICYBOT_TEAMS_POLICY_TEAM) ------------------------------------------
    async def is_policy_team(self, sender: ChannelAccount, action: str) -> bool:
        """Whether the sender may review; a refusal goes to the security log."""
        return await may_review(actor(sender), self.policy_bot.settings, action=action)

    async def on_review(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        sender = activity.from_property or ChannelAccount()
        if not await self.is_policy_team(sender, "review"):
            await turn_context.send_activity(MessageFactory.text(NOT_POLICY_TEAM))
            return
        if not is_personal(activity):
            await turn_context.send_activity(MessageFactory.text(REVIEW_IN_PERSONAL_CHAT))
            return
        groups = self.policy_bot.review.queue(status="open")
        shown = groups[: teams_cards.REVIEW_LIMIT]
        heading = teams_cards.review_heading(len(groups), len(shown))
        if not shown:
            await turn_context.send_activity(text_activity(heading))
            return
        cards = [CardFactory.adaptive_card(teams_cards.group_card(g)) for g in shown]
        await turn_context.send_activity(MessageFactory.list(cards, text=heading))

    async def on_group_action(
        self, turn_context: TurnContext, action: str, value: dict[str, Any]
    ) -> None:
        """Answer / Dismiss on a group's card (from `review`, or a review-channel post); the
        answer goes to every asker at once. In a channel, the reply is threaded under the card."""
        sender = turn_context.activity.from_property or ChannelAccount()
        if not await self.is_policy_team(sender, f"review {action}"):
            await turn_context.send_activity(MessageFactory.text(NOT_POLICY_TEAM_ACTION))
            return
        reviewer = actor(sender).recorded_as
        group_id = parse_id(value.get("group_id"))
        if group_id is None:
            await turn_context.send_activity(text_activity(STALE_GROUP))
            return
        try:
            if action == teams_cards.ANSWER_GROUP:
                answer = value.get(teams_cards.ANSWER_INPUT)
                report = await self.policy_bot.answer_group(
                    group_id, answer if isinstance(answer, str) else "", by=reviewer
                )
                group = self.policy_bot.review.group(group_id)
                reply = (
                    f"Group #{group.id} answered ({group.count} asked); similar questions now "
                    f"get this answer. Askers: {report.describe()}."
                )
                if report.pending:
                    reply += " Pending answers are retried while the bot runs."
            else:
                group = self.policy_bot.dismiss_group(group_id, by=reviewer)
                reply = f"Group #{group.id} dismissed ({group.count} asked); nobody is notified."
        except ReviewError as error:  # an empty answer, no such group
            await turn_context.send_activity(text_activity(str(error)))
            return
        notice_question = parse_id(value.get(teams_cards.NOTICE_QUESTION))
        if notice_question is not None:
            await self.settle_notice(turn_context, notice_question, group)
        await turn_context.send_activity(text_activity(reply))

    async def settle_notice(
        self, turn_context: TurnContext, question_id: int, group: Group
    ) -> None:
        """Replace the review-channel card pressed with one saying how its group was handled,
        so nobody answers it twice. The threaded reply says so as well, so a card that cannot
        be edited (deleted, or a client without edits) is only logged."""
        card_id = turn_context.activity.reply_to_id
        if not card_id:
            return
        try:
            notice = self.policy_bot.review_notice(question_id)
        except KeyError:  # purged since
            return
        settled = card_activity(
            teams_cards.review_notice_card(notice, settled=group),
            teams_cards.review_notice_summary(notice),
        )
        settled.id = card_id
        try:
            await turn_context.update_activity(settled)
        except Exception:  # the connector raises many unrelated types; the reply still tells
            log.warning("could not update the review card %s", card_id, exc_info=True)

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


def parse_id(raw: object) -> int | None:
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
        await send_proactive(self.adapter, reference, MessageFactory.text(text), self.app_id)


def channel_reference(conversation_id: str, service_url: str, app_id: str) -> ConversationReference:
    """A configured channel, for a proactive post: nobody wrote to the bot there, so no
    reference was stored, and the service URL is the configured one."""
    return ConversationReference(
        channel_id="msteams",
        service_url=service_url,
        conversation=ConversationAccount(
            id=conversation_id, is_group=True, conversation_type="channel"
        ),
        bot=ChannelAccount(id=app_id),
    )


class ConfiguredChannel:
    """A Teams channel the bot posts into as new messages, through the Teams service at
    POLICYBOT_TEAMS_SERVICE_URL, by a configured conversation id."""

    def __init__(
        self, adapter: CloudAdapter, app_id: str, conversation_id: str, service_url: str
    ) -> None:
        self.adapter = adapter
        self.app_id = app_id
        self.conversation_id = conversation_id
        self.service_url = service_url

    async def send(self, activity: Activity) -> None:
        reference = channel_reference(self.conversation_id, self.service_url, self.app_id)
        await send_proactive(self.adapter, reference, activity, self.app_id)


class TeamsChannelPoster(ConfiguredChannel):
    """Posts the weekly digest (POLICYBOT_DIGEST_TEAMS_CONVERSATION)."""

    async def post(self, text: str) -> None:
        summary = text.splitlines()[0] if text else "policybot digest"
        await self.send(card_activity(teams_cards.digest_card(text), summary))


class TeamsReviewPoster(ConfiguredChannel):
    """Posts each question that reaches the review list into the policy team's channel
    (POLICYBOT_TEAMS_REVIEW_CONVERSATION), as Slack's review channel."""

    async def post(self, notice: ReviewNotice) -> None:
        await self.send(
            card_activity(
                teams_cards.review_notice_card(notice), teams_cards.review_notice_summary(notice)
            )
        )


async def send_proactive(
    adapter: CloudAdapter, reference: ConversationReference, activity: Activity, app_id: str
) -> None:
    """Send one activity into an existing conversation; DeliveryError if Teams refuses it."""
    failures: list[Exception] = []

    async def deliver(turn_context: TurnContext) -> None:
        # A new message, not a reply to the continuation activity the adapter made up.
        turn_context.activity.id = None
        # Caught here: an error escaping the turn would go to the adapter's on_turn_error,
        # which tells the user "something went wrong" and hides the failure from the caller.
        try:
            await turn_context.send_activity(activity)
        except Exception as error:  # the connector raises many unrelated types
            failures.append(error)

    try:
        await adapter.continue_conversation(reference, deliver, app_id)
    except Exception as error:  # e.g. no credentials could be had for the service URL
        failures.append(error)
    if failures:
        raise DeliveryError(f"Teams did not take the message: {failures[0]}") from failures[0]


def register_outbound(bot: PolicyBot, adapter: CloudAdapter | None = None) -> CloudAdapter:
    """Register the Teams notifier with the core, and the digest and review posters when their
    conversations are configured; also for commands that post without serving (`digest`)."""
    settings = bot.settings
    adapter = adapter or create_adapter(settings)
    app_id = settings.microsoft_app_id
    bot.notifiers[PLATFORM] = TeamsNotifier(adapter, app_id)
    if settings.digest_teams_conversation:
        bot.channel_posters[PLATFORM] = TeamsChannelPoster(
            adapter, app_id, settings.digest_teams_conversation, settings.teams_service_url
        )
    if settings.teams_review_conversation:
        bot.review_posters[PLATFORM] = TeamsReviewPoster(
            adapter, app_id, settings.teams_review_conversation, settings.teams_service_url
        )
    return adapter


# -- HTTP --------------------------------------------------------------------------------------
#: A loopback URL written the one way every URL parser reads alike: lower-case scheme, a literal
#: host (no user info, no percent-encoding, no backslash, no spaces), an optional port, a plain
#: path. Anything else is refused rather than interpreted, since the checker and the HTTP
#: client that then connects must agree on the host.
_LOOPBACK_URL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>localhost|\[::1\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3})"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<path>/[A-Za-z0-9._~/-]*)?"
)


def is_loopback(url: object) -> bool:
    """Whether `url` can only lead to this machine: a serviceUrl the bot may reply to without
    a token check, or a file link it may fetch over plain HTTP. Checked as the text is, and
    again as both urllib and yarl (the HTTP client's parser) read it."""
    if not isinstance(url, str):
        return False
    match = _LOOPBACK_URL.fullmatch(url)
    if match is None:
        return False
    host = match["host"].strip("[]")
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:  # also refuses 127.0.0.01, 300.0.0.1
                return False
        except ValueError:
            return False
    port = int(match["port"]) if match["port"] else None
    if port is not None and port > 65535:
        return False
    default_port = 443 if match["scheme"] == "https" else 80
    try:
        as_urllib = urlsplit(url)
        as_client = URL(url)
        read_by_urllib = (as_urllib.hostname, as_urllib.port, as_urllib.username)
        read_by_client = (as_client.host, as_client.port, as_client.user)
    except ValueError:
        return False
    return read_by_urllib == (host, port, None) and read_by_client == (
        host,
        port or default_port,
        None,
    )


def is_loopback_host(host: str) -> bool:
    """Whether a server listening on `host` (as given to `serve --host`) takes connections
    from this machine only; all interfaces ("0.0.0.0", "::", "") and names other than
    localhost do not count."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def arrived_on_loopback(request: web.Request) -> bool:
    """Whether the request came in on a loopback address of this machine: the socket's own
    address, not what the request claims, so an app served somewhere else than the host it
    was built for still takes nothing unauthenticated from elsewhere."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or not sockname:
        return False
    try:
        address = ipaddress.ip_address(str(sockname[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket's IPv4 client
    return address.is_loopback


def check_unauthenticated_host(settings: Settings, listen_host: str | None) -> None:
    """POLICYBOT_TEAMS_UNAUTHENTICATED only while the server listens on loopback: a clear
    start-up error otherwise."""
    if not settings.teams_unauthenticated:
        return
    if listen_host is None or not is_loopback_host(listen_host):
        if listen_host is None:
            where = "a host it was not told"
        elif listen_host in ("", "0.0.0.0", "::"):
            where = "all interfaces"
        else:
            where = listen_host
        raise ConfigError(
            "POLICYBOT_TEAMS_UNAUTHENTICATED=1 serves /api/messages with no token check, so it "
            f"is only allowed on loopback, but the server would listen on {where}. For local "
            "testing run `policybot serve --host 127.0.0.1`; for real Teams traffic unset it "
            "and set MicrosoftAppId."
        )


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def add_routes(
    app: web.Application,
    bot: PolicyBot,
    *,
    listen_host: str | None = None,
    placeholder_after: float | None = None,
) -> None:
    """Mount `POST /api/messages`; register the Teams notifier and digest and review posters.
    Only for a configured Teams (`Settings.teams_configured`); unauthenticated, only on a
    loopback `listen_host` (ConfigError otherwise)."""
    settings = bot.settings
    if not settings.teams_configured:
        raise ConfigError(
            "Teams is not configured: set MicrosoftAppId (or, for local testing only, "
            "POLICYBOT_TEAMS_UNAUTHENTICATED=1)"
        )
    authenticated = bool(settings.microsoft_app_id)
    check_unauthenticated_host(settings, listen_host)
    adapter = register_outbound(bot)
    teams_bot = TeamsBot(bot, placeholder_after=placeholder_after)
    if not authenticated:
        log.warning(
            "POLICYBOT_TEAMS_UNAUTHENTICATED is set: %s accepts UNAUTHENTICATED requests, on "
            "loopback only, and replies only to service URLs on this machine. For local testing "
            "only; set MicrosoftAppId for Teams.",
            ROUTE,
        )

    def refuse_unauthenticated(request: web.Request, reason: str) -> None:
        access.refused(
            "Teams activity", platform=PLATFORM, who=request.remote or "", reason=reason
        )

    async def messages(request: web.Request) -> web.StreamResponse:
        if not authenticated and not arrived_on_loopback(request):
            refuse_unauthenticated(request, "unauthenticated mode reached off loopback")
            return error(403, "unauthenticated mode only takes requests on loopback")
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
            refuse_unauthenticated(request, "serviceUrl not on loopback in unauthenticated mode")
            return error(403, "unauthenticated mode only replies to a serviceUrl on loopback")
        try:
            response = await adapter.process(request, teams_bot)
        except (web.HTTPUnauthorized, jwt.PyJWTError) as refusal:
            access.refused(
                "Teams activity",
                platform=PLATFORM,
                who=request.remote or "",
                reason=teams_auth.refusal_reason(refusal),
            )
            return error(401, "a valid Bot Framework token is required")
        return response if response is not None else web.Response(status=201)

    app.router.add_post(ROUTE, messages)
