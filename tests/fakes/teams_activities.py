"""Activity JSON as Microsoft Teams posts it to a bot's messaging endpoint."""

from __future__ import annotations

import itertools
import json
from typing import Any

BOT = {"id": "28:policybot-app-id", "name": "PolicyBot"}
ALICE = {"id": "29:alice", "name": "Alice Example", "aadObjectId": "aad-alice"}
PAT = {"id": "29:pat", "name": "Pat Policy", "aadObjectId": "aad-pat"}
BOB = {"id": "29:bob", "name": "Bob Example", "aadObjectId": "aad-bob"}

PERSONAL = {"id": "a:personal-chat-alice", "conversationType": "personal", "tenantId": "t1"}
CHANNEL = {
    "id": "19:general@thread.tacv2;messageid=1700000000000",
    "conversationType": "channel",
    "isGroup": True,
    "tenantId": "t1",
}
PAT_PERSONAL = {"id": "a:personal-chat-pat", "conversationType": "personal", "tenantId": "t1"}
BOB_PERSONAL = {"id": "a:personal-chat-bob", "conversationType": "personal", "tenantId": "t1"}
GROUP_CHAT = {"id": "19:group@thread.v2", "conversationType": "groupChat", "isGroup": True}

_ids = itertools.count(1)


def _base(
    kind: str, service_url: str, conversation: dict[str, Any], sender: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": kind,
        "id": f"incoming-{next(_ids)}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": dict(sender),
        "recipient": dict(BOT),
        "conversation": dict(conversation),
        "channelData": {"tenant": {"id": "t1"}},
        "locale": "en-US",
    }


def message(
    text: str,
    service_url: str,
    *,
    conversation: dict[str, Any] = PERSONAL,
    sender: dict[str, Any] = ALICE,
    mention_bot: bool = False,
) -> dict[str, Any]:
    """A message; with `mention_bot`, prefixed by an @mention of the bot as Teams sends it."""
    activity = _base("message", service_url, conversation, sender)
    activity["textFormat"] = "plain"
    if mention_bot:
        tag = f"<at>{BOT['name']}</at>"
        activity["text"] = f"{tag} {text}"
        activity["entities"] = [{"type": "mention", "text": tag, "mentioned": dict(BOT)}]
    else:
        activity["text"] = text
    return activity


def card_submit(
    action: str,
    question_id: object,
    service_url: str,
    *,
    conversation: dict[str, Any] = PERSONAL,
    sender: dict[str, Any] = ALICE,
) -> dict[str, Any]:
    """What Teams posts when someone presses an Action.Submit button on the bot's card."""
    activity = _base("message", service_url, conversation, sender)
    activity["value"] = {"policybot": action, "question_id": question_id}
    activity["replyToId"] = "activity-1"
    return activity


def members_added(
    members: list[dict[str, Any]], service_url: str, *, conversation: dict[str, Any] = PERSONAL
) -> dict[str, Any]:
    activity = _base("conversationUpdate", service_url, conversation, ALICE)
    activity["membersAdded"] = [dict(m) for m in members]
    return activity


def submit(
    value: dict[str, Any],
    service_url: str,
    *,
    conversation: dict[str, Any] = PERSONAL,
    sender: dict[str, Any] = ALICE,
) -> dict[str, Any]:
    """An Action.Submit with any data: the card's `data` merged with its inputs' values."""
    activity = _base("message", service_url, conversation, sender)
    activity["value"] = dict(value)
    activity["replyToId"] = "activity-1"
    return activity


FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"


def file_message(
    name: str,
    url: str,
    service_url: str,
    *,
    sender: dict[str, Any] = ALICE,
    conversation: dict[str, Any] = PERSONAL,
    inline_type: str = "",
) -> dict[str, Any]:
    """A file attached in a personal chat, as Teams sends it (a download-info attachment with a
    pre-authorized downloadUrl, and no text); with `inline_type`, as an attachment carrying a
    contentUrl instead (the Bot Framework Emulator, Web Chat)."""
    activity = _base("message", service_url, conversation, sender)
    activity["text"] = ""
    attachment: dict[str, Any]
    if inline_type:
        attachment = {"contentType": inline_type, "contentUrl": url, "name": name}
    else:
        stem, _, extension = name.rpartition(".")
        attachment = {
            "contentType": FILE_DOWNLOAD_INFO,
            "contentUrl": "https://contoso.sharepoint.com/personal/files/" + name,
            "name": name,
            "content": {"downloadUrl": url, "uniqueId": f"id-{stem}", "fileType": extension},
        }
    activity["attachments"] = [attachment]
    return activity


def feedback_submit(
    reaction: str,
    reply_to_id: str,
    service_url: str,
    *,
    comment: str | None = None,
    conversation: dict[str, Any] = PERSONAL,
    sender: dict[str, Any] = ALICE,
    action_name: str = "feedback",
) -> dict[str, Any]:
    """What Teams posts when someone submits its feedback form under the bot's message
    `reply_to_id`: a `message/submitAction` invoke, the form's fields as a JSON string."""
    activity = _base("invoke", service_url, conversation, sender)
    activity["name"] = "message/submitAction"
    activity["replyToId"] = reply_to_id
    action: dict[str, Any] = {"reaction": reaction}
    if comment is not None:
        action["feedback"] = json.dumps({"feedbackText": comment})
    activity["value"] = {"actionName": action_name, "actionValue": action}
    return activity
