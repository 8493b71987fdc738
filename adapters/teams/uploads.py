"""Policy admins' files (POLICYBOT_ADMINS): a file attached in a personal chat is handed to
the core's upload (which downloads it once the uploader is known to be an admin) and shown
as the change it would make, with Activate / Discard / Retire."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from microsoft_agents.activity import Activity, ChannelAccount
from microsoft_agents.hosting.core import TurnContext

from adapters.downloads import DownloadError, TooLarge, download
from adapters.teams import cards as teams_cards
from adapters.teams.loopback import is_loopback
from adapters.teams.turns import HandlerContext, actor, card_activity, parse_id, text_activity
from bot import messages
from bot.models import PolicyError
from bot.use_cases import ACTIVATE, DISCARD, RETIRE, Fetch, UploadReply

#: How Teams hands a bot a file attached in a personal chat (`content.downloadUrl`).
FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
#: Attachments that are part of a message itself (its HTML, a card, a pasted picture), never
#: a policy file, even when they carry a contentUrl.
_NOT_FILES = ("text/html", "application/vnd.microsoft.card.", "image/")

#: The upload card's buttons, as the core's actions on a policy version.
VERSION_ACTIONS = {
    teams_cards.ACTIVATE_VERSION: ACTIVATE,
    teams_cards.DISCARD_VERSION: DISCARD,
    teams_cards.RETIRE_DOCUMENT: RETIRE,
}


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


async def on_upload(
    ctx: HandlerContext, turn_context: TurnContext, files: list[AttachedFile]
) -> None:
    """Each attached file handed to the core's upload, which authorizes before the download.

    Someone who is no admin is refused once, whatever the number of files: one message and
    one security-log line for one attempt, rather than the same refusal per file."""
    uploader = actor(turn_context.activity.from_property or ChannelAccount())
    if not ctx.policy_bot.is_admin(uploader):
        files = files[:1]
    for file in files:
        upload = ctx.policy_bot.receive_upload(uploader, file.name, fetcher(ctx, file))
        await ctx.reply_when_ready(turn_context, upload, upload_activity)


def fetcher(ctx: HandlerContext, file: AttachedFile) -> Fetch:
    """How to fetch an attached file's bytes: over HTTPS only (or loopback, for local
    testing), within the size limit and the download timeout."""

    async def fetch() -> bytes:
        name = file.name or "the file"
        if not (file.url.startswith("https://") or is_loopback(file.url)):
            raise PolicyError(messages.could_not_download(name, "Teams gave no HTTPS link to it"))
        limit = ctx.policy_bot.settings.max_upload_bytes
        try:
            return await download(file.url, limit, timeout=ctx.download_timeout)
        except TooLarge:
            raise PolicyError(messages.too_large(name, limit)) from None
        except DownloadError as error:
            raise PolicyError(messages.could_not_download(name, str(error))) from None

    return fetch


def upload_activity(reply: UploadReply) -> Activity:
    """The stored version's change summary with Activate / Discard, or the refusal."""
    if reply.result is None:
        return text_activity(reply.refusal)
    return card_activity(
        teams_cards.upload_card(reply.result), teams_cards.upload_summary(reply.result)
    )


async def on_version_action(
    ctx: HandlerContext, turn_context: TurnContext, action: str, value: dict[str, Any]
) -> None:
    """Activate / Discard / Retire on an upload's card."""
    sender = turn_context.activity.from_property or ChannelAccount()
    settled = await ctx.policy_bot.worker.run(
        ctx.policy_bot.settle_upload,
        actor(sender),
        parse_id(value.get("version_id")),
        VERSION_ACTIONS[action],
    )
    await turn_context.send_activity(text_activity(settled.text))
