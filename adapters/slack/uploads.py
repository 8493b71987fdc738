"""Slack listeners for admins' policy files: a file sent in a DM with the bot (downloaded with
the bot token from Slack's own hosts only, then `PolicyLibrary.upload`) and the upload message's
*Activate* / *Discard*."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.downloads import DownloadError, TooLarge, download
from adapters.slack import blocks as render
from adapters.slack.listening import clicked_id, listening_in, tell, who_clicked
from adapters.slack.messages import PLATFORM, ChannelReply, Message, text_message
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor, PolicyError
from bot.policies import ACTIVATE, DISCARD, NotAuthorized, too_large

#: The upload message's buttons, as the core's actions on a policy version.
VERSION_ACTIONS = {render.ACTION_ACTIVATE: ACTIVATE, render.ACTION_DISCARD: DISCARD}


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


async def on_files(
    bot: PolicyBot,
    client: AsyncWebClient,
    channel: str,
    user: str,
    files: list[dict[str, Any]] | None,
) -> None:
    # A file sent in a DM may arrive twice, as a file_share message and a file_shared
    # event (two event ids), perhaps at two processes: it is taken once, by its file id.
    fresh = [
        f for f in files or [] if not f.get("id") or bot.first_delivery(PLATFORM, f"file:{f['id']}")
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
            name, data = await fetch_file(file, bot.settings)
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


async def on_file_shared(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    # Only for apps subscribed to file_shared: a file sent in a DM with the bot.
    channel = str(event.get("channel_id") or "")
    user = str(event.get("user_id") or "")
    if not channel.startswith("D") or not user or user == context.bot_user_id:
        return
    file_id = event.get("file_id") or (event.get("file") or {}).get("id")
    if file_id:
        await on_files(listening_in(context).bot, client, channel, user, [{"id": file_id}])


async def on_version_action(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    bot = listening_in(context).bot
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
    blocks = render.settled_upload_blocks(original, settled.version.id, settled.outcome, user["id"])
    if body.get("response_url"):
        await respond(text=settled.outcome, blocks=blocks, replace_original=True)
    else:
        await tell(body, respond, client, settled.outcome)
