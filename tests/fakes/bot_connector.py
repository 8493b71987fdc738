"""A Bot Framework connector (the service a bot replies to) that records what the bot sends.

It answers the three calls a bot makes while replying: send to a conversation, reply to an
activity (both POST) and update an activity (PUT), each with a fresh activity id.

It also plays Teams' streaming protocol: an activity carrying a `streaminfo` entity is part of a
stream. The first (`informative` or `streaming`, a typing activity, sequence 1) starts one and
its id is the stream's id; later ones name that `streamId` with a rising `streamSequence`; the
`final` one is a message naming it, whose id is the stream's. Anything else is refused with 400
as Teams does, and `refuse_streaming` refuses every stream with 403 (as in a channel).
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
#: Seconds `received` waits before it calls the bot hung.
RECEIVED_GUARD = 30.0


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
    def stream(self) -> dict[str, Any] | None:
        """The activity's `streaminfo` entity, when it is part of a stream."""
        for entity in self.body.get("entities") or []:
            if isinstance(entity, dict) and entity.get("type") == "streaminfo":
                return entity
        return None

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
        #: When set, every streamed activity is refused with 403 (Teams: no streaming there).
        self.refuse_streaming = False
        #: Each stream's id, with the last sequence number taken and whether it has ended.
        self.streams: dict[str, tuple[int, bool]] = {}
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
        stream = call.stream
        if stream is not None:
            return self._stream(call, stream)
        return web.json_response({"id": call.id})

    def _stream(self, call: Call, stream: dict[str, Any]) -> web.Response:
        def refuse(status: int, code: str) -> web.Response:
            return web.json_response({"error": {"code": code, "message": code}}, status=status)

        if self.refuse_streaming:
            return refuse(403, "ContentStreamNotAllowed")
        kind = stream.get("streamType")
        stream_id = stream.get("streamId")
        if kind == "final":
            if call.body.get("type") != "message" or stream_id not in self.streams:
                return refuse(400, "BadArgument")
            taken, ended = self.streams[stream_id]
            if ended:
                return refuse(400, "ContentStreamHasEnded")
            self.streams[stream_id] = (taken, True)
            return web.json_response({"id": stream_id})
        sequence = stream.get("streamSequence")
        if kind not in ("informative", "streaming") or call.body.get("type") != "typing":
            return refuse(400, "BadArgument")
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            return refuse(400, "BadArgument")
        if stream_id is None:
            if sequence != 1:
                return refuse(400, "BadArgument")
            self.streams[call.id] = (1, False)
            return web.json_response({"id": call.id})
        if stream_id not in self.streams:
            return refuse(400, "BadArgument")
        last, ended = self.streams[stream_id]
        if ended:
            return refuse(400, "ContentStreamHasEnded")
        if sequence <= last:
            return refuse(400, "ContentStreamSequenceOrderPreConditionFailed")
        self.streams[stream_id] = (sequence, False)
        return web.json_response({"id": stream_id})

    async def received(self, count: int) -> list[Call]:
        """Wait until `count` calls have arrived (a guard timeout only stops a hung test: long
        enough for several questions answered together, their acknowledgements not waiting)."""
        async with asyncio.timeout(RECEIVED_GUARD):
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
