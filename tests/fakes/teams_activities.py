"""Activity JSON as Microsoft Teams posts it to a bot's messaging endpoint."""

from __future__ import annotations

import itertools
from typing import Any

BOT = {"id": "28:policybot-app-id", "name": "PolicyBot"}
ALICE = {"id": "29:alice", "name": "Alice Example", "aadObjectId": "aad-alice"}
PAT = {"id": "29:pat", "name": "Pat Policy", "aadObjectId": "aad-pat"}

PERSONAL = {"id": "a:personal-chat-alice", "conversationType": "personal", "tenantId": "t1"}
CHANNEL = {
    "id": "19:general@thread.tacv2;messageid=1700000000000",
    "conversationType": "channel",
    "isGroup": True,
    "tenantId": "t1",
}
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
