"""Policy admins' files (POLICYBOT_ADMINS): a file attached in a personal chat is downloaded,
handed to the core's upload and shown as the change it would make, with Activate / Discard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ChannelAccount

from adapters.downloads import DownloadError, TooLarge, download
from adapters.teams import cards as teams_cards
from adapters.teams.loopback import is_loopback
from adapters.teams.turns import HandlerContext, actor, card_activity, parse_id, text_activity
from bot.models import PolicyError
from bot.policies import ACTIVATE, DISCARD, too_large

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
    """An admin's attached policy file: authorized before anything is downloaded."""
    uploader = actor(turn_context.activity.from_property or ChannelAccount())
    try:
        ctx.policy_bot.policies.authorize(uploader, action="policy upload")
    except PolicyError as refusal:
        await turn_context.send_activity(text_activity(str(refusal)))
        return
    for file in files:
        upload = read_upload(ctx, file, uploaded_by=uploader.recorded_as)
        await ctx.reply_when_ready(turn_context, upload, lambda reply: reply)


async def read_upload(ctx: HandlerContext, file: AttachedFile, *, uploaded_by: str) -> Activity:
    """Download, hand to the core's upload, and render what the new version would change."""
    limit = ctx.policy_bot.settings.max_upload_bytes
    name = file.name or "the file"
    unchanged = "Nothing was changed; the active policy is as it was."
    if not (file.url.startswith("https://") or is_loopback(file.url)):
        return text_activity(f"I could not download {name}: Teams gave no HTTPS link to it.")
    try:
        data = await download(file.url, limit, timeout=ctx.download_timeout)
    except TooLarge:
        return text_activity(f"{too_large(name, limit)} {unchanged}")
    except DownloadError as error:
        return text_activity(f"I could not download {name}: {error}. {unchanged}")
    try:
        result = await ctx.policy_bot.policies.upload_in_background(
            file.name, data, uploaded_by=uploaded_by
        )
    except PolicyError as error:
        return text_activity(f"{error} {unchanged}")
    return card_activity(teams_cards.upload_card(result), teams_cards.upload_summary(result))


async def on_version_action(
    ctx: HandlerContext, turn_context: TurnContext, action: str, value: dict[str, Any]
) -> None:
    """Activate / Discard on an upload's card."""
    sender = turn_context.activity.from_property or ChannelAccount()
    try:
        reply = ctx.policy_bot.policies.settle(
            parse_id(value.get("version_id")), VERSION_ACTIONS[action], actor(sender)
        ).outcome
    except PolicyError as error:  # not an admin, no such version, not discardable
        reply = str(error)
    await turn_context.send_activity(text_activity(reply))
