"""Answerers that stand in for a slow one (an LLM): they wait until the test lets them go."""

from __future__ import annotations

import asyncio

from bot.answering import Draft, ExtractiveAnswerer
from bot.models import Retrieval


class GatedAnswerer:
    """The extractive answer, held back until `release()`; `started` tells when it is waiting."""

    def __init__(self, max_citations: int = 3) -> None:
        self.inner = ExtractiveAnswerer(max_citations)
        self.started = asyncio.Event()
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()

    async def answer(self, retrieval: Retrieval, *, covered: bool) -> Draft:
        self.started.set()
        await self._gate.wait()
        return await self.inner.answer(retrieval, covered=covered)
