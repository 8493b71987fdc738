"""An answer on its way (`PolicyBot.ask_streamed`): the draft of an LLM's summary as the model
writes it, then the final `Answer`.

The answer is worked out in a task of its own, which runs to its end whatever the reader does
(the question is logged even when no one reads on). The reader gets the latest draft each
time it asks for the next: a reader slower than the model (a platform that takes one update a
second) skips the drafts in between, and the model is never kept waiting for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from bot.models import Answer


@dataclass(frozen=True)
class DraftText:
    """The draft so far, whole (each is the one before it, extended): what to show until the
    final answer, which may replace it (it then opens with `messages.DRAFT_REPLACED`)."""

    text: str


class AnswerStream:
    """Iterated: `DraftText`s as the draft grows, then the `Answer` (or the failure that
    answering met, raised). `answer` is the same answer, to await alone."""

    def __init__(self, ask: Callable[[Callable[[str], None]], Awaitable[Answer]]) -> None:
        self._latest = ""
        self._changed = asyncio.Event()
        self.answer: asyncio.Future[Answer] = asyncio.ensure_future(ask(self._offer))
        self.answer.add_done_callback(lambda _: self._changed.set())

    def _offer(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def __aiter__(self) -> AsyncIterator[DraftText | Answer]:
        given = ""
        while True:
            # No await between the look and the wait: nothing can be offered unseen.
            self._changed.clear()
            if self._latest != given:
                given = self._latest
                yield DraftText(given)
            elif self.answer.done():
                yield self.answer.result()
                return
            else:
                await self._changed.wait()
