"""A Bot Framework connector (the service a bot replies to) that records what the bot sends.

It answers the three calls a bot makes while replying: send to a conversation, reply to an
activity (both POST) and update an activity (PUT), each with a fresh activity id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.loopback import serving

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


@dataclass(frozen=True)
class Call:
    method: str
    conversation_id: str
    activity_id: str  # the activity replied to (POST) or updated (PUT); "" for a new message
    body: dict[str, Any]
    #: The id the stub gave the activity it took (what a later update or reply names).
    id: str = ""
    #: The Authorization header the bot sent (its token for the Bot Framework).
    authorization: str = ""

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    @property
    def card(self) -> dict[str, Any] | None:
        cards = self.cards
        return cards[0] if cards else None

    @property
    def cards(self) -> list[dict[str, Any]]:
        """Every Adaptive Card attached (a list layout carries several)."""
        return [
            dict(attachment["content"])
            for attachment in self.body.get("attachments") or []
            if attachment.get("contentType") == ADAPTIVE_CARD
        ]


class ConnectorStub:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.url = ""
        #: When set, every call is refused with this status (e.g. 403: the bot was removed).
        self.refuse_with: int | None = None
        #: Conversations every call to which is refused with 403 (the bot was removed there).
        self.refuse_conversations: set[str] = set()
        #: When set, edits (PUT) are refused with 405, as by clients that cannot edit messages.
        self.refuse_updates = False
        self._arrived = asyncio.Event()
        self.app = web.Application()
        base = "/v3/conversations/{conversation_id}/activities"
        self.app.router.add_post(base, self._record)
        self.app.router.add_post(base + "/{activity_id}", self._record)
        self.app.router.add_put(base + "/{activity_id}", self._record)

    async def _record(self, request: web.Request) -> web.Response:
        call = Call(
            method=request.method,
            conversation_id=request.match_info["conversation_id"],
            activity_id=request.match_info.get("activity_id", ""),
            body=await request.json(),
            id=f"activity-{len(self.calls) + 1}",
            authorization=request.headers.get("Authorization", ""),
        )
        self.calls.append(call)
        self._arrived.set()
        refused = self.refuse_with
        if refused is None and call.conversation_id in self.refuse_conversations:
            refused = 403
        if refused is not None:
            return web.json_response(
                {"error": {"code": "BotNotInConversationRoster", "message": "refused"}},
                status=refused,
            )
        if self.refuse_updates and request.method == "PUT":
            return web.json_response(
                {"error": {"code": "MethodNotAllowed", "message": "no edits"}}, status=405
            )
        return web.json_response({"id": call.id})

    async def received(self, count: int) -> list[Call]:
        """Wait until `count` calls have arrived (a guard timeout only stops a hung test)."""
        async with asyncio.timeout(10):
            while len(self.calls) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.calls

    def cards(self) -> list[dict[str, Any]]:
        return [card for call in self.calls if (card := call.card) is not None]

    def in_conversation(self, conversation_id: str) -> list[Call]:
        return [call for call in self.calls if call.conversation_id == conversation_id]


@asynccontextmanager
async def connector_stub() -> AsyncIterator[ConnectorStub]:
    stub = ConnectorStub()
    async with serving(stub.app) as url:
        stub.url = url + "/"
        yield stub
