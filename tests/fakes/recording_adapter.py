"""An in-process channel adapter of the Agents SDK set up like a Teams personal chat: turns
run without HTTP, replies land in `activity_buffer`, edits in `updated_activities`, and a test
can wait for a reply. Activities are numbered as they pass, incoming and outgoing alike."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from microsoft_agents.activity import (
    Activity,
    ChannelAccount,
    ChannelId,
    ConversationAccount,
    ConversationReference,
    ResourceResponse,
    TurnContextProtocol,
)
from microsoft_agents.hosting.core import ChannelAdapter, TurnContext

from tests.fakes.teams_activities import ALICE, BOT, PERSONAL


def account(data: dict[str, Any]) -> ChannelAccount:
    return ChannelAccount(id=data["id"], name=data["name"], aad_object_id=data.get("aadObjectId"))


def conversation(data: dict[str, Any]) -> ConversationAccount:
    return ConversationAccount(
        id=data["id"], conversation_type=data["conversationType"], is_group=data.get("isGroup")
    )


class RecordingTestAdapter(ChannelAdapter):
    __test__ = False

    def __init__(self, logic: Callable[[TurnContext], Awaitable[None]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        self.logic = logic
        #: What an incoming activity has where it says nothing itself.
        self.template = Activity(
            type="message",
            channel_id=ChannelId("msteams"),
            service_url="https://smba.example.invalid/",
            from_property=account(ALICE),
            recipient=account(BOT),
            conversation=conversation(PERSONAL),
        )
        self.activity_buffer: list[Activity] = []
        self.updated_activities: list[Activity] = []
        self._ids = itertools.count(1)
        self._sent = asyncio.Event()

    async def receive_activity(self, activity: str | Activity) -> None:
        incoming = (
            Activity(type="message", text=activity) if isinstance(activity, str) else activity
        )
        for field in ("channel_id", "service_url", "from_property", "recipient", "conversation"):
            if getattr(incoming, field) is None:
                setattr(incoming, field, getattr(self.template, field))
        incoming.id = incoming.id or str(next(self._ids))
        await self.run_pipeline(TurnContext(self, incoming), self.logic)

    async def send_activities(
        self, context: TurnContextProtocol[Any], activities: list[Activity]
    ) -> list[ResourceResponse]:
        responses = []
        for activity in activities:
            activity.id = str(next(self._ids))
            self.activity_buffer.append(activity)
            responses.append(ResourceResponse(id=activity.id))
        self._sent.set()
        return responses

    async def update_activity(self, context: TurnContextProtocol[Any], activity: Activity) -> None:
        self.updated_activities.append(activity)

    async def delete_activity(
        self, context: TurnContextProtocol[Any], reference: ConversationReference
    ) -> None:
        raise NotImplementedError("the Teams bot deletes no messages")

    async def replies(self, count: int) -> list[Activity]:
        """Wait until `count` replies were sent (the guard timeout only stops a hung test)."""
        async with asyncio.timeout(10):
            while len(self.activity_buffer) < count:
                self._sent.clear()
                await self._sent.wait()
        return self.activity_buffer
