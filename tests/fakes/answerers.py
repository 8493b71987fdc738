"""Answerers that stand in for a slow one (an LLM) or a broken one."""

from __future__ import annotations

import asyncio

from bot.answering.extractive import Answerer, Draft, ExtractiveAnswerer
from bot.answering.outcome import Outcome
from bot.models import Retrieval


class GatedAnswerer:
    """`inner`'s answer (the extractive one by default), held back until `release()`; `started`
    tells when it is waiting, `finished` whether it has answered."""

    def __init__(self, inner: Answerer | None = None) -> None:
        self.inner = inner or ExtractiveAnswerer()
        self.started = asyncio.Event()
        self.finished = False
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()

    async def answer(self, retrieval: Retrieval, *, outcome: Outcome) -> Draft:
        self.started.set()
        await self._gate.wait()
        self.finished = True
        return await self.inner.answer(retrieval, outcome=outcome)


class BrokenAnswerer:
    """Fails as an answerer with a bug would: not a QuestionError, nothing the asker did."""

    async def answer(self, retrieval: Retrieval, *, outcome: Outcome) -> Draft:
        raise RuntimeError("the answerer broke")
