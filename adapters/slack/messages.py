"""What listeners and the outbound senders share: a Slack message and where it goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as render
from bot.models import Answer

PLATFORM = "slack"

Message = tuple[str, list[dict[str, Any]]]  # fallback text, blocks


@dataclass
class ChannelReply:
    """A message in a channel, DM or thread, replaced with chat.update."""

    client: AsyncWebClient
    channel: str
    thread_ts: str | None = None
    ts: str | None = None

    async def post(self, message: Message) -> None:
        text, blocks = message
        kwargs: dict[str, Any] = {"thread_ts": self.thread_ts} if self.thread_ts else {}
        response = await self.client.chat_postMessage(
            channel=self.channel, text=text, blocks=blocks, **kwargs
        )
        self.ts = response.get("ts")
        self.channel = response.get("channel") or self.channel

    async def replace(self, message: Message) -> None:
        if self.ts is None:
            await self.post(message)
            return
        text, blocks = message
        await self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)


@dataclass
class EphemeralReply:
    """A message only the user sees, through the request's response_url."""

    respond: AsyncRespond

    async def post(self, message: Message) -> None:
        text, blocks = message
        await self.respond(
            text=text, blocks=blocks, response_type="ephemeral", replace_original=False
        )

    async def replace(self, message: Message) -> None:
        text, blocks = message
        await self.respond(text=text, blocks=blocks, replace_original=True)


def text_message(text: str) -> Message:
    return text, [render.plain(text)]


THINKING: Message = (render.THINKING_TEXT, [render.context(render.THINKING_TEXT)])


def answer_message(answer: Answer, *, shareable: bool = False) -> Message:
    return render.answer_text(answer), render.answer_blocks(answer, shareable=shareable)
