"""botbuilder's TestAdapter set up like a Teams personal chat, able to wait for a reply."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount, ResourceResponse

from tests.fakes.teams_activities import ALICE, BOT, PERSONAL


def account(data: dict[str, Any]) -> ChannelAccount:
    return ChannelAccount(id=data["id"], name=data["name"], aad_object_id=data.get("aadObjectId"))


def conversation(data: dict[str, Any]) -> ConversationAccount:
    return ConversationAccount(
        id=data["id"], conversation_type=data["conversationType"], is_group=data.get("isGroup")
    )


# botbuilder ships no type information (no py.typed), so mypy sees TestAdapter as Any.
class RecordingTestAdapter(TestAdapter):  # type: ignore[misc]
    """Replies land in `activity_buffer`, edits in `updated_activities`, as in TestAdapter."""

    __test__ = False

    def __init__(self, logic: Callable[[TurnContext], Awaitable[None]]) -> None:
        super().__init__(
            logic,
            Activity(
                channel_id="msteams",
                service_url="https://smba.example.invalid/",
                from_property=account(ALICE),
                recipient=account(BOT),
                conversation=conversation(PERSONAL),
            ),
        )
        self._sent = asyncio.Event()

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        responses: list[ResourceResponse] = await super().send_activities(context, activities)
        self._sent.set()
        return responses

    async def replies(self, count: int) -> list[Activity]:
        """Wait until `count` replies were sent (the guard timeout only stops a hung test)."""
        async with asyncio.timeout(10):
            while len(self.activity_buffer) < count:
                self._sent.clear()
                await self._sent.wait()
        sent: list[Activity] = self.activity_buffer  # untyped in botbuilder
        return sent
