"""Slack listeners for admins' policy files: a file sent in a DM with the bot (handed to the
core's `receive_upload`, which downloads it, with the bot token from Slack's own hosts only,
once the uploader is known to be an admin) and the upload message's *Activate* / *Discard* /
*Retire* (`settle_upload`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.downloads import DownloadError, TooLarge, download
from adapters.slack import blocks as render
from adapters.slack.listening import clicked_id, first_delivery, listening_in, tell, who_clicked
from adapters.slack.messages import (
    LINKED_NOT_SENT,
    NOT_HOSTED_BY_SLACK,
    PLATFORM,
    SIGN_IN_PAGE,
    ChannelReply,
    Message,
    file_unreadable,
    text_message,
)
from bot import messages
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import Actor, PolicyError
from bot.use_cases import ACTIVATE, DISCARD, RETIRE, Fetched, UploadReply

#: The upload message's buttons, as the core's actions on a policy version.
VERSION_ACTIONS = {
    render.ACTION_ACTIVATE: ACTIVATE,
    render.ACTION_DISCARD: DISCARD,
    render.ACTION_RETIRE: RETIRE,
}


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
    too_big = messages.too_large(name or "The file", limit)
    size = file.get("size")
    if isinstance(size, int) and size > limit:
        raise PolicyError(too_big)  # Slack told us the size: no need to download it
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url or file.get("mode") in {"external", "tombstone"}:
        raise PolicyError(messages.could_not_download(name or "that file", LINKED_NOT_SENT))
    if not file_url_allowed(url, settings.slack_api_url):
        raise PolicyError(messages.could_not_download(name or "that file", NOT_HOSTED_BY_SLACK))
    try:
        data = await download(
            url, limit, headers={"Authorization": f"Bearer {settings.slack_bot_token}"}
        )
    except TooLarge:
        raise PolicyError(too_big) from None
    except DownloadError as error:
        raise PolicyError(messages.could_not_download(name or "the file", str(error))) from None
    if looks_like_html(data) and str(file.get("filetype") or "").lower() != "html":
        raise PolicyError(messages.could_not_download(name or "the file", SIGN_IN_PAGE))
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
        f
        for f in files or []
        if not f.get("id") or await bot.worker.run(bot.claim_delivery, PLATFORM, f"file:{f['id']}")
    ]
    uploader = Actor(PLATFORM, user)
    for file in fresh:
        fetched = False

        async def fetch(file: dict[str, Any] = file) -> Fetched:
            nonlocal fetched
            fetched = True
            if not file.get("url_private_download") and file.get("id"):
                file = await file_info(client, file["id"])
            return Fetched(*await fetch_file(file, bot.settings))

        reply = await bot.receive_upload(uploader, str(file.get("name") or ""), fetch)
        await ChannelReply(client, channel).post(upload_message(reply))
        if not fetched:
            # Refused before fetching: the uploader is no admin, and the other files would
            # only repeat the refusal (and its line in the security log).
            return


def upload_message(reply: UploadReply) -> Message:
    if reply.result is None:
        return text_message(reply.refusal)
    return render.upload_text(reply.result), render.upload_blocks(reply.result)


async def file_info(client: AsyncWebClient, file_id: str) -> dict[str, Any]:
    """The full file object: a file_shared event carries only the id, and a file_share
    message may carry a stub ("file_access": "check_file_info")."""
    try:
        info = await client.files_info(file=file_id)
    except SlackApiError as error:
        reason = str(error.response.get("error"))
        raise PolicyError(
            messages.could_not_download("that file", file_unreadable(reason))
        ) from None
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
    if file_id and await first_delivery(context):
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
    if not await first_delivery(context):
        return
    user = body["user"]
    version_id = clicked_id(action)
    settled = await bot.worker.run(
        bot.settle_upload, who_clicked(user), version_id, VERSION_ACTIONS[action["action_id"]]
    )
    if settled.version is None or version_id is None:  # not an admin, a stale button, ...
        await tell(body, respond, client, settled.text)
        return
    original = (body.get("message") or {}).get("blocks") or []
    # The clicked message's buttons go, by the version they were under: Retire settles the
    # document's active version, which may be another one.
    blocks = render.settled_upload_blocks(original, version_id, settled.text, user["id"])
    if body.get("response_url"):
        await respond(text=settled.text, blocks=blocks, replace_original=True)
    else:
        await tell(body, respond, client, settled.text)
    if VERSION_ACTIONS[action["action_id"]] != DISCARD:
        # What the re-check in the background found, once it is done.
        await bot.when_rechecked(lambda text: tell(body, respond, client, text))
