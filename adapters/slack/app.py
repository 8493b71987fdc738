"""Slack: bolt's AsyncApp listeners that parse an event, call the core and render the answer.

Every listener acknowledges first and answers after, so Slack gets its reply well inside
3 seconds whatever answering takes. Runs over HTTP (`/slack/events` on the shared aiohttp
server, see `add_routes`) or Socket Mode (`run_socket_mode`, `policybot slack`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters import replies
from adapters.downloads import DownloadError, TooLarge, download
from adapters.replies import Reply, reply_in_time
from adapters.slack import blocks as render
from adapters.slack.messages import (
    PLATFORM,
    THINKING,
    ChannelReply,
    EphemeralReply,
    Message,
    answer_message,
    text_message,
)
from adapters.slack.outbound import SlackLateReplier, make_client, register_outbound, shared_session
from bot import access
from bot.config import ConfigError, Settings
from bot.core import CHECK, Delivery, PolicyBot
from bot.models import Actor, IncomingQuestion, PolicyError, QuestionError
from bot.policies import ACTIVATE, DISCARD, NotAuthorized, too_large
from bot.redaction import Redactor, redact_logs
from bot.review.queue import ReviewError, may_review

log = logging.getLogger(__name__)

#: The message shortcut's callback id (see slack-manifest.yml).
CHECK_SHORTCUT = "policybot_check_post"
COMMAND = "/policy"
#: The message subtype of a file sent in a DM: an admin uploading a policy.
FILE_SHARE = "file_share"
NOT_POLICY_TEAM = (
    "Sorry, only members of the policy team can answer or dismiss questions on the review "
    "list. Nothing was changed."
)

#: An answer's buttons: the core's reaction, and what the asker is told.
REACTIONS = {
    render.ACTION_HELPFUL: ("helpful", "Thanks for the feedback! 👍"),
    render.ACTION_NOT_HELPFUL: (
        "not_helpful",
        "Thanks. I've put your question on the policy team's review list.",
    ),
    render.ACTION_ESCALATE: (
        "ask_policy_team",
        "Sent to the policy team. They'll follow up with you.",
    ),
}
#: The upload message's buttons, as the core's actions on a policy version.
VERSION_ACTIONS = {render.ACTION_ACTIVATE: ACTIVATE, render.ACTION_DISCARD: DISCARD}

#: Kinds of question (as `PolicyBot.receive` keeps them until answered), besides CHECK: the
#: message shortcut's draft post.
DM, MENTION, SLASH = "dm", "mention", "command"
#: Where a listener finds the id of the question its delivery carries (see `once_per_delivery`).
RECEIVED = "policybot_received_id"

#: The bolt app on the server's web app, when Slack is configured.
SLACK_APP = web.AppKey("slack", AsyncApp)


def question_text(text: str, bot_user_id: str | None) -> str:
    """The question without the mention of the bot itself."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return " ".join(text.split())


def mention_question(event: dict[str, Any], bot_user_id: str | None) -> IncomingQuestion | None:
    """The question of an app_mention event; None for a bot's or an edit, or for `help`."""
    if event.get("bot_id") or event.get("subtype"):
        return None
    text = question_text(event.get("text", ""), bot_user_id)
    if not text or text.lower() == "help":
        return None
    thread_ts = event.get("thread_ts") or event["ts"]
    return IncomingQuestion(
        text=text,
        platform=PLATFORM,
        asker=event.get("user", ""),
        conversation=f"{event['channel']}/{thread_ts}",
    )


def dm_question(event: dict[str, Any], bot_user_id: str | None) -> IncomingQuestion | None:
    """The question of a message someone sent the bot directly; None for anything else (files,
    edits, bots, the bot itself) and for `help`."""
    if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
        return None
    user = event.get("user")
    if not user or user == bot_user_id:
        return None
    text = question_text(event.get("text", ""), bot_user_id)
    if text.lower() in {"help", "?"}:
        return None
    return IncomingQuestion(text=text, platform=PLATFORM, asker=user, conversation=event["channel"])


def command_question(command: dict[str, Any]) -> IncomingQuestion | None:
    """The question of `/policy …`; None for `/policy` alone or `/policy help`. The answer is
    private, so conversation stays empty: a later follow-up goes by DM."""
    text = " ".join((command.get("text") or "").split())
    if text.lower() in {"", "help"}:
        return None
    return IncomingQuestion(text=text, platform=PLATFORM, asker=str(command.get("user_id") or ""))


def question_in(
    body: dict[str, Any], bot_user_id: str | None
) -> tuple[str, IncomingQuestion] | None:
    """(its kind, the question) a delivery carries, as its listener will answer it; None when
    it carries none (a button, a file, `help`…)."""
    if body.get("type") == "event_callback":
        event = body.get("event") or {}
        if event.get("type") == "app_mention":
            asked = mention_question(event, bot_user_id)
            return (MENTION, asked) if asked else None
        if event.get("type") == "message":
            asked = dm_question(event, bot_user_id)
            return (DM, asked) if asked else None
        return None
    if body.get("command") == COMMAND:
        asked = command_question(body)
        return (SLASH, asked) if asked else None
    if body.get("type") == "message_action" and body.get("callback_id") == CHECK_SHORTCUT:
        draft = str((body.get("message") or {}).get("text") or "")
        user = str((body.get("user") or {}).get("id") or "")
        return CHECK, IncomingQuestion(text=draft, platform=PLATFORM, asker=user)
    return None


def delivery_key(request: AsyncBoltRequest, body: dict[str, Any]) -> str:
    """What a repeat of this delivery has in common with it: an event's id (Slack's retries
    keep it); otherwise the signature, unique to a signed body at its timestamp, so a replay
    of the same signed request within the 5 minutes bolt accepts it is known (a digest:
    nothing derived from the signing secret is stored); in Socket Mode, which is unsigned,
    the payload itself (each carries its own trigger_id or action_ts)."""
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and event_id:
        return f"event:{event_id}"
    signature = (request.headers.get("x-slack-signature") or [""])[0]
    if signature:
        return "signed:" + hashlib.sha256(signature.encode()).hexdigest()
    payload = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return "payload:" + hashlib.sha256(payload.encode()).hexdigest()


def who_clicked(user: dict[str, Any]) -> Actor:
    """The user of an interaction payload, with the name Slack gave."""
    return Actor(PLATFORM, user["id"], user.get("username") or user.get("name", ""))


def file_url_allowed(url: str, api_url: str) -> bool:
    """The bot token may go to Slack's own hosts only (or to wherever SLACK_API_URL points:
    tests and staging), never to a URL that merely arrived in a payload."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return True
    api = urlsplit(api_url)
    return bool(host) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


def looks_like_html(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


async def fetch_file(file: dict[str, Any], settings: Settings) -> tuple[str, bytes]:
    """A file someone shared with the bot: its name and bytes, at most the upload limit.
    PolicyError (with a message for the uploader) when it cannot be had."""
    name = str(file.get("name") or file.get("title") or "")
    limit = settings.max_upload_bytes
    too_big = too_large(name or "The file", limit)
    size = file.get("size")
    if isinstance(size, int) and size > limit:
        raise PolicyError(too_big)  # Slack told us the size: no need to download it
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url or file.get("mode") in {"external", "tombstone"}:
        raise PolicyError(
            f"I can't download {name or 'that file'}: send the file itself, not a link to it."
        )
    if not file_url_allowed(url, settings.slack_api_url):
        raise PolicyError(f"I can't download {name or 'that file'}: it is not hosted by Slack.")
    try:
        data = await download(
            url, limit, headers={"Authorization": f"Bearer {settings.slack_bot_token}"}
        )
    except TooLarge:
        raise PolicyError(too_big) from None
    except DownloadError as error:
        raise PolicyError(
            f"I couldn't download {name or 'the file'} from Slack: {error}."
        ) from None
    if looks_like_html(data) and str(file.get("filetype") or "").lower() != "html":
        # Without the files:read scope Slack answers with its sign-in page, not the file.
        raise PolicyError(
            f"Slack sent a sign-in page instead of {name or 'the file'}: the app needs the "
            "files:read scope (reinstall it from slack-manifest.yml)."
        )
    return name, data


def build_slack_app(bot: PolicyBot, *, thinking_delay: float | None = None) -> AsyncApp:
    """The bolt app with every listener; registers the Slack notifier on `bot`."""
    settings = bot.settings
    if thinking_delay is None:
        thinking_delay = replies.THINKING_DELAY
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    app = AsyncApp(
        client=make_client(settings),
        signing_secret=settings.slack_signing_secret,
        name="policybot",
    )
    register_outbound(bot, app.client)

    # -- plumbing ---------------------------------------------------------------------------
    bot.late_repliers[PLATFORM] = SlackLateReplier(app.client)

    @app.middleware
    async def once_per_delivery(
        req: AsyncBoltRequest,
        body: dict[str, Any],
        context: Any,
        next: Callable[[], Awaitable[None]],
    ) -> Any:
        # After bolt's signature check, before any acknowledgement. Slack retries an event it
        # thinks went unanswered (X-Slack-Retry-Num), perhaps to another process or after a
        # restart, and anyone holding a signed request can replay it within bolt's 5 minutes:
        # the first delivery is being handled. The question it carries is kept in the same
        # write, so one acknowledged is answered even if this process dies before answering.
        key = delivery_key(req, body)
        asked = question_in(body, context.bot_user_id)
        kind, question = asked if asked else ("", None)
        delivery: Delivery = bot.receive(PLATFORM, key, question, kind)
        if not delivery.first:
            log.info("dropping a repeated delivery (%s)", key.partition(":")[0])
            return BoltResponse(status=200, body="")
        context[RECEIVED] = delivery.received_id
        return await next()

    async def answer(
        incoming: IncomingQuestion,
        reply: Reply[Message],
        received: int | None,
        *,
        shareable: bool = False,
    ) -> None:
        result = await reply_in_time(
            bot.ask(incoming, received=received),
            reply,
            render=lambda a: answer_message(a, shareable=shareable),
            text=text_message,
            thinking=THINKING,
            delay=thinking_delay,
        )
        bot.replied(received)
        if result is not None:
            await bot.refer_unanswered(result, incoming)

    async def help_in(reply: Reply[Message]) -> None:
        await reply.post((render.HELP_TEXT, render.help_blocks()))

    # -- asking -----------------------------------------------------------------------------
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        if event.get("bot_id") or event.get("subtype"):
            return
        thread_ts = event.get("thread_ts") or event["ts"]
        reply = ChannelReply(client, event["channel"], thread_ts)
        incoming = mention_question(event, context.bot_user_id)
        if incoming is None:
            await help_in(reply)
            return
        await answer(incoming, reply, context.get(RECEIVED))

    @app.event("message")
    async def on_message(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        subtype = event.get("subtype")
        if subtype == FILE_SHARE and event.get("user") != context.bot_user_id:
            await on_files(client, event["channel"], event.get("user", ""), event.get("files"))
            return
        # Only new messages people send the bot directly: no edits, deletions, joins, bots.
        if subtype:
            return
        user = event.get("user")
        if not user or user == context.bot_user_id:
            return
        reply = ChannelReply(client, event["channel"])
        incoming = dm_question(event, context.bot_user_id)
        if incoming is None:
            await help_in(reply)
            return
        await answer(incoming, reply, context.get(RECEIVED))

    @app.command(COMMAND)
    async def on_command(
        ack: Any,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: Any,
    ) -> None:
        incoming = command_question(command)
        if incoming is None:
            await ack(text=render.HELP_TEXT, blocks=render.help_blocks())
            return
        await ack()
        await answer(incoming, EphemeralReply(respond), context.get(RECEIVED), shareable=True)

    @app.shortcut(CHECK_SHORTCUT)
    async def on_check(
        ack: Any, shortcut: dict[str, Any], respond: AsyncRespond, context: Any
    ) -> None:
        await ack()
        text = (shortcut.get("message") or {}).get("text") or ""
        try:
            check = bot.check_post(text)
        except QuestionError as error:
            await respond(text=str(error), response_type="ephemeral", replace_original=False)
        else:
            await respond(
                text=check.lead,
                blocks=render.check_blocks(check),
                response_type="ephemeral",
                replace_original=False,
            )
        bot.replied(context.get(RECEIVED))

    # -- answers' buttons -------------------------------------------------------------------
    async def tell(
        body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, text: str
    ) -> None:
        """A private note to whoever clicked, under the message they clicked on (a click in
        App Home has no message: the note goes to their DM with the bot)."""
        if body.get("response_url"):
            await respond(text=text, response_type="ephemeral", replace_original=False)
            return
        channel = (body.get("channel") or {}).get("id")
        if channel:
            await client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=text)
        else:
            await client.chat_postMessage(channel=body["user"]["id"], text=text)

    def clicked_id(action: dict[str, Any]) -> int | None:
        try:
            return int(action.get("value", ""))
        except ValueError:
            return None

    async def on_feedback(
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        qid = clicked_id(action)
        reaction, note = REACTIONS[action["action_id"]]
        try:
            if qid is None:
                raise KeyError(action.get("value"))
            notice = bot.react(qid, reaction)
        except KeyError:
            await tell(body, respond, client, "I couldn't find that question any more.")
            return
        await tell(body, respond, client, note)
        await bot.announce(PLATFORM, notice, asker=body["user"]["id"])

    for action_id in REACTIONS:
        app.action(action_id)(on_feedback)

    @app.action(render.ACTION_SHARE)
    async def on_share(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        qid = clicked_id(action)
        try:
            if qid is None:
                raise KeyError(action.get("value"))
            shared = bot.logged_answer(qid)
        except KeyError:
            await respond(text="I couldn't find that answer any more.", replace_original=False)
            return
        await respond(
            text=render.answer_text(shared),
            blocks=render.shared_answer_blocks(shared, body["user"]["id"]),
            response_type="in_channel",
            replace_original=False,
        )
        await respond(delete_original=True)

    # -- policy uploads (admins, in a DM) ----------------------------------------------------
    async def on_files(
        client: AsyncWebClient, channel: str, user: str, files: list[dict[str, Any]] | None
    ) -> None:
        # A file sent in a DM may arrive twice, as a file_share message and a file_shared
        # event (two event ids), perhaps at two processes: it is taken once, by its file id.
        fresh = [
            f
            for f in files or []
            if not f.get("id") or bot.first_delivery(PLATFORM, f"file:{f['id']}")
        ]
        if not fresh:
            return
        reply = ChannelReply(client, channel)
        try:
            # Before anything is downloaded.
            bot.policies.authorize(Actor(PLATFORM, user), action="policy upload")
        except NotAuthorized as refusal:
            await reply.post(text_message(str(refusal)))
            return
        for file in fresh:
            message: Message
            try:
                if not file.get("url_private_download") and file.get("id"):
                    file = await file_info(client, file["id"])
                name, data = await fetch_file(file, settings)
                result = await bot.policies.upload_in_background(
                    name, data, uploaded_by=Actor(PLATFORM, user).recorded_as
                )
            except PolicyError as error:
                message = text_message(str(error))
            else:
                message = (render.upload_text(result), render.upload_blocks(result))
            await ChannelReply(client, channel).post(message)

    async def file_info(client: AsyncWebClient, file_id: str) -> dict[str, Any]:
        """The full file object: a file_shared event carries only the id, and a file_share
        message may carry a stub ("file_access": "check_file_info")."""
        try:
            info = await client.files_info(file=file_id)
        except SlackApiError as error:
            reason = error.response.get("error")
            raise PolicyError(f"I couldn't read that file from Slack: {reason}.") from None
        file: dict[str, Any] = info.get("file") or {}
        return file

    @app.event("file_shared")
    async def on_file_shared(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
        # Only for apps subscribed to file_shared: a file sent in a DM with the bot.
        channel = str(event.get("channel_id") or "")
        user = str(event.get("user_id") or "")
        if not channel.startswith("D") or not user or user == context.bot_user_id:
            return
        file_id = event.get("file_id") or (event.get("file") or {}).get("id")
        if file_id:
            await on_files(client, channel, user, [{"id": file_id}])

    async def on_version_action(
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        user = body["user"]
        try:
            settled = bot.policies.settle(
                clicked_id(action), VERSION_ACTIONS[action["action_id"]], who_clicked(user)
            )
        except PolicyError as error:
            await tell(body, respond, client, str(error))
            return
        original = (body.get("message") or {}).get("blocks") or []
        blocks = render.settled_upload_blocks(
            original, settled.version.id, settled.outcome, user["id"]
        )
        if body.get("response_url"):
            await respond(text=settled.outcome, blocks=blocks, replace_original=True)
        else:
            await tell(body, respond, client, settled.outcome)

    for action_id in VERSION_ACTIONS:
        app.action(action_id)(on_version_action)

    # -- the review list (policy team) -------------------------------------------------------
    async def publish_home(client: AsyncWebClient, user: str, member: bool | None = None) -> None:
        # Callers that have just checked membership pass it, saving a user-group look-up.
        if member is None:
            member = await in_policy_team(client, user)
        groups = bot.review.queue(status="open") if member else None
        view = render.home_view(bot.storage.active_versions(), groups)
        await client.views_publish(user_id=user, view=view)

    async def confirm_to(client: AsyncWebClient, user: str, channel: str, text: str) -> None:
        """A note for the reviewer: in the review channel only they see it, or in their DM."""
        try:
            if channel:
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
            else:
                await client.chat_postMessage(channel=user, text=text)
        except SlackApiError:
            log.exception("could not confirm a review action to %s", user)

    @app.action(render.ACTION_ANSWER_GROUP)
    async def on_answer_clicked(
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        user = body["user"]["id"]
        if not await in_policy_team(client, user, "review answer"):
            await tell(body, respond, client, NOT_POLICY_TEAM)
            return
        group_id = clicked_id(action)
        try:
            if group_id is None:
                raise ReviewError("That button no longer points at a question group.")
            group = bot.review.group(group_id)
        except ReviewError as error:
            await tell(body, respond, client, str(error))
            return
        channel = (body.get("channel") or {}).get("id") or ""
        metadata = json.dumps({"group": group.id, "channel": channel})
        # trigger_id is valid for 3 seconds: open the modal before anything slow.
        try:
            await client.views_open(
                trigger_id=body["trigger_id"], view=render.answer_modal(group, metadata)
            )
        except SlackApiError as error:
            reason = error.response.get("error")
            await tell(body, respond, client, f"Slack did not open the form ({reason}); try again.")

    @app.view(render.ANSWER_VIEW)
    async def on_answer_submitted(
        ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        user = body["user"]
        if not await in_policy_team(client, user["id"], "review answer submit"):
            await ack(response_action="errors", errors={render.ANSWER_BLOCK: NOT_POLICY_TEAM})
            return
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            group_id = int(metadata["group"])
        except (ValueError, KeyError, TypeError):
            await ack(
                response_action="errors",
                errors={render.ANSWER_BLOCK: "This form is out of date; open it again."},
            )
            return
        values = (view.get("state") or {}).get("values") or {}
        text = str(
            ((values.get(render.ANSWER_BLOCK) or {}).get(render.ANSWER_INPUT) or {}).get("value")
            or ""
        )
        reviewer = who_clicked(user).recorded_as
        try:
            # Stored before the modal closes, so a mistake is shown in the modal itself.
            bot.review.answer(group_id, text, reviewer)
        except ReviewError as error:
            await ack(response_action="errors", errors={render.ANSWER_BLOCK: str(error)})
            return
        await ack()
        # Everyone who asked in the group is sent the answer, on the platform they asked on.
        report = await bot.deliver_answers(group_id)
        note = (
            f"Group #{group_id} answered; the bot now gives your answer to similar questions. "
            f"Askers: {report.describe()}."
        )
        await confirm_to(client, user["id"], str(metadata.get("channel") or ""), note)
        await publish_home(client, user["id"], member=True)

    @app.action(render.ACTION_DISMISS_GROUP)
    async def on_dismiss_clicked(
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        user = body["user"]
        if not await in_policy_team(client, user["id"], "review dismiss"):
            await tell(body, respond, client, NOT_POLICY_TEAM)
            return
        group_id = clicked_id(action)
        try:
            if group_id is None:
                raise ReviewError("That button no longer points at a question group.")
            group = bot.dismiss_group(group_id, by=who_clicked(user).recorded_as)
        except ReviewError as error:
            await tell(body, respond, client, str(error))
            return
        note = f"Group #{group.id} dismissed ({group.count} questions); nobody is notified."
        channel = (body.get("channel") or {}).get("id") or ""
        await confirm_to(client, user["id"], channel, note)
        await publish_home(client, user["id"], member=True)

    # -- App Home ---------------------------------------------------------------------------
    async def in_policy_team(client: AsyncWebClient, user: str, action: str = "") -> bool:
        """Whether `user` may review; with `action`, a refusal goes to the security log."""

        async def in_user_group() -> bool:
            try:
                members = await client.usergroups_users_list(
                    usergroup=settings.slack_policy_team_group
                )
            except SlackApiError:
                log.exception("could not read the policy team's user group")
                return False
            return user in (members.get("users") or [])

        return await may_review(
            Actor(PLATFORM, user),
            settings,
            action=action,
            in_team_group=in_user_group if settings.slack_policy_team_group else None,
        )

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        await publish_home(client, event["user"])

    return app


#: The largest body `/slack/events` reads. Slack's payloads are a few kilobytes (a modal's
#: state some tens); the server's larger limit is for policy uploads, not for Slack.
SLACK_MAX_BODY = 1024 * 1024
#: How old a signed request may be (Slack's rule, as bolt applies it): older is a replay.
SLACK_MAX_AGE = 5 * 60
NOT_SLACK_PAYLOAD = "the body is not a Slack payload (a JSON object or a form)"


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None once it is past `limit` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def signed_by_slack(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's request signature (v0, HMAC-SHA256 over the raw bytes), checked before the body
    is parsed; a timestamp that is not a number, or older than SLACK_MAX_AGE, fails."""
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
        return False
    if abs(time.time() - int(timestamp)) > SLACK_MAX_AGE:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def is_ssl_check(body: bytes) -> bool:
    """Slack's `ssl_check=1` form, which bolt answers 200 before any signature check: it
    reaches no listener and says nothing."""
    if len(body) > 1024 or not body.isascii():
        return False
    return parse_qs(body.decode()).get("ssl_check") == ["1"]


def add_routes(web_app: web.Application, bot: PolicyBot, **options: Any) -> AsyncApp:
    """`POST /slack/events`: the Events API, interactivity and the slash command, signed; the
    Web API client's session lives as long as the server (`SLACK_APP` on the web app)."""
    secret = bot.settings.slack_signing_secret
    if not secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set")
    slack = build_slack_app(bot, **options)
    web_app[SLACK_APP] = slack

    async def session_while_serving(_: web.Application) -> AsyncIterator[None]:
        async with shared_session(slack.client):
            yield

    web_app.cleanup_ctx.append(session_while_serving)

    def refused(request: web.Request, reason: str) -> None:
        access.refused("Slack request", platform=PLATFORM, who=request.remote or "", reason=reason)

    async def slack_events(request: web.Request) -> web.Response:
        # The signature is checked here, on the raw bytes, before anything parses them: bolt
        # parses the body first (a malformed one raised) and logs a refused one whole.
        body = await read_bounded(request, SLACK_MAX_BODY)
        if body is None:
            refused(request, f"body over {SLACK_MAX_BODY} bytes")
            return web.json_response({"error": "request body too large"}, status=413)
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not signed_by_slack(secret, body, timestamp, signature):
            if is_ssl_check(body):  # Slack's check of the URL's certificate: 200, as bolt does
                return web.Response(status=200)
            # forged, replayed or stale
            refused(request, "bad or expired X-Slack-Signature")
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(
                body=body.decode("utf-8"),
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            # Not UTF-8, not JSON, or JSON that is not an object (bolt reads fields of it):
            # signed, so Slack's (or the secret's holder's) mistake, not an attack to log.
            log.warning("a signed Slack request was not a Slack payload (%d bytes)", len(body))
            return web.json_response({"error": NOT_SLACK_PAYLOAD}, status=400)
        response = await slack.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    web_app.router.add_post("/slack/events", slack_events)
    return slack


async def serve_socket_mode(bot: PolicyBot, **options: Any) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    if not bot.settings.slack_app_token:
        raise ConfigError("SLACK_APP_TOKEN (an app-level token, xapp-…) is not set")
    app = build_slack_app(bot, **options)
    async with shared_session(app.client):
        handler = AsyncSocketModeHandler(app, bot.settings.slack_app_token)
        # What a stopped process acknowledged and did not answer, beside new questions.
        left_over = asyncio.create_task(bot.answer_left_over())
        try:
            await handler.start_async()
        finally:
            left_over.cancel()
            # Stops the client's own reconnecting loops, which would outlive a cancelled task.
            await handler.close_async()


def run_socket_mode(bot: PolicyBot) -> None:
    """`policybot slack`: connect to Slack over Socket Mode; no public URL needed."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_logs(Redactor.of(bot.settings))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_socket_mode(bot))
