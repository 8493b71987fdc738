"""What listeners and the outbound senders share: a Slack message and where it goes, and the
few texts only Slack has (every other user-facing text is the core's, in bot.messages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as render
from bot import messages
from bot.models import Answer

PLATFORM = "slack"

#: Share in channel pressed under an answer no longer in the log.
SHARED_ANSWER_GONE = "I couldn't find that answer any more."
#: Why a file shared with the bot cannot be downloaded (after "I could not download …: ").
LINKED_NOT_SENT = "send the file itself, not a link to it"
NOT_HOSTED_BY_SLACK = "it is not hosted by Slack"
#: Without the files:read scope Slack answers a download with its sign-in page.
SIGN_IN_PAGE = (
    "Slack sent its sign-in page instead: the app needs the files:read scope (reinstall it "
    "from slack-manifest.yml)"
)


def form_not_opened(reason: str) -> str:
    """Slack would not open the Answer form (`reason`: its error code)."""
    return f"Slack did not open the form ({reason}); try again."


def file_unreadable(reason: str) -> str:
    """Why a file could not be downloaded when files.info refused (`reason`: its error code)."""
    return f"Slack would not describe it ({reason})"


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


THINKING: Message = (messages.THINKING, [render.context(messages.THINKING)])


def answer_message(answer: Answer, *, shareable: bool = False) -> Message:
    return render.answer_text(answer), render.answer_blocks(answer, shareable=shareable)
