"""An answerer that holds its answer until the test releases it (an LLM that takes its time)."""

from __future__ import annotations

import asyncio

from bot.answering import Draft, ExtractiveAnswerer
from bot.models import Retrieval


class SlowAnswerer:
    def __init__(self, max_citations: int = 3) -> None:
        self.inner = ExtractiveAnswerer(max_citations)
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = False

    async def answer(self, retrieval: Retrieval, *, covered: bool) -> Draft:
        self.started.set()
        await self.release.wait()
        self.finished = True
        return await self.inner.answer(retrieval, covered=covered)
