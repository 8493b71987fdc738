"""A policy's clause vectors are computed beside the questions, not on the first one.

Over the real server on loopback, with an embedder that takes as long as the test says (the
model itself would take 5-20 s for a long policy): while the active policy's vectors are
being computed, `/healthz` answers and a question is answered lexically; once they are
stored, questions use them.
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiohttp import web

from adapters.server import RUNNER_OPTIONS, build_app
from bot.answering.extractive import ExtractiveAnswerer
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.retrieval.semantic import HybridRetriever
from bot.store.database import Storage
from tests.fakes.loopback import LOOPBACK
from tests.reliability import percentiles, record

#: Seconds after which the embedder lets go whatever happens, so that code which waits for
#: it on the event loop (the old way) ends the test instead of hanging it.
HELD_AT_MOST = 3.0


class HeldEmbedder:
    """Unit vectors from each text's words (hashed into 64 dimensions), returned only once
    `release` is set: an embedding that takes as long as the test needs."""

    name = "held-test-embedder"
    dimensions = 64

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> Any:
        self.calls += 1
        if not self.release.wait(HELD_AT_MOST):
            self.release.set()  # let go: whoever checks `release` sees the wait was given up
        rows = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in text.lower().split():
                row[zlib.crc32(word.encode()) % self.dimensions] += 1.0
            row /= max(float(np.linalg.norm(row)), 1e-9)
        return rows


async def test_healthz_and_questions_are_answered_while_the_vectors_are_computed(
    tmp_path: Path, settings: Settings
) -> None:
    embedder = HeldEmbedder()
    storage = Storage.open(tmp_path / "vectors.db")
    bot = PolicyBot(
        settings=replace(settings, db_path=str(tmp_path / "vectors.db")),
        storage=storage,
        retriever=HybridRetriever(storage, embedder=embedder),
        answerer=ExtractiveAnswerer(settings.max_citations),
    )
    bot.ensure_policy()
    runner = web.AppRunner(build_app(bot, host=LOOPBACK), **RUNNER_OPTIONS)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = runner.addresses[0][1]
    health: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{port}") as http:
            question = IncomingQuestion("can I tweet about our quarterly revenue?", "test", "U1")
            asked = asyncio.create_task(bot.ask(question))
            for _ in range(5):
                started = time.monotonic()
                response = await http.get("/healthz")
                health.append((time.monotonic() - started) * 1000)
                assert response.status_code == 200
                assert not embedder.release.is_set()  # answered while still embedding
            answer = await asyncio.wait_for(asked, HELD_AT_MOST * 2)
            answered_while_embedding = not embedder.release.is_set()
            assert answered_while_embedding
            assert answer.citations  # lexically, from the active policy
            embedder.release.set()
            clause_ids = [c.id for c in storage.clauses([v.id for v in storage.active_versions()])]
            for _ in range(500):  # until the vectors are stored, for every process
                stored = storage.clause_vectors(clause_ids, embedder.name)
                if len(stored) == len(clause_ids):
                    break
                await asyncio.sleep(0.01)
            assert len(stored) == len(clause_ids)
            later = await bot.ask(replace(question, asker="U2"))
            assert later.citations
    finally:
        embedder.release.set()
        await runner.cleanup()
        storage.close()
    record(
        "Loop: /healthz and a question while the policy's clause vectors are computed",
        "pytest tests/test_loop_vectors.py",
        health_checks_while_embedding=len(health),
        answered_lexically_while_embedding=int(answered_while_embedding),
        vectors_stored=len(stored),
        **{f"healthz_{k}": v for k, v in percentiles(health).items()},
    )
