"""Answerers that stand in for a slow one (an LLM) or a broken one."""

from __future__ import annotations

import asyncio
import threading

from bot.answering.extractive import Answerer, Draft, ExtractiveAnswerer
from bot.answering.outcome import Outcome
from bot.models import Retrieval


class Flag:
    """An `asyncio.Event` that any thread may set and any event loop await: a Slack question
    is answered on the server's answering loop (adapters.slack.answering) while the test
    waits on its own."""

    def __init__(self) -> None:
        self._flag = threading.Event()

    def set(self) -> None:
        self._flag.set()

    def is_set(self) -> bool:
        return self._flag.is_set()

    async def wait(self) -> None:
        while not self._flag.is_set():
            await asyncio.sleep(0.005)


class GatedAnswerer:
    """`inner`'s answer (the extractive one by default), held back until `release()`; `started`
    tells when it is waiting, `finished` whether it has answered; from any loop."""

    def __init__(self, inner: Answerer | None = None) -> None:
        self.inner = inner or ExtractiveAnswerer()
        self.started = Flag()
        self.finished = False
        self._gate = Flag()

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
