"""Grouping with question embeddings, its fallback to words, and the labeled grouping set."""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.grouping import SETS, Pairs, pairs_of
from bot.answering.extractive import ExtractiveAnswerer
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.retrieval.semantic import HybridRetriever
from bot.store.database import Storage
from bot.store.liveness import ProcessMark
from bot.store.unlogged import UnloggedQuestions

#: Paraphrases that share no word the review list's words can match once the synonym lines
#: fitted to them are gone (`python -m bench grouping`): embeddings are what groups them.
UNBRIDGED_BY_WORDS = {
    "dog": [
        "can I bring my dog to the office",
        "are pets allowed at the office?",
        "is it ok to have my puppy with me at work",
    ],
    "sick days": ["how many sick days do we get", "how many days can I be off ill"],
}

#: What the stand-in model knows: these words mean one thing each; any other word is its own.
CONCEPTS = {"dog": 0, "pets": 0, "puppy": 0, "sick": 1, "ill": 1}


class ConceptEmbedder:
    """A stand-in for the sentence model behind `encode`: unit vectors where the words of one
    concept point the same way and every other word its own (stable) way."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the model stopped loading")
        rows = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in text.lower().replace("?", " ").split():
                row[CONCEPTS.get(word, 8 + zlib.crc32(word.encode()) % 248)] += (
                    4.0 if word in CONCEPTS else 1.0
                )
            row /= np.linalg.norm(row) or 1.0
        return rows


def hybrid_bot(tmp_path: Path, embedder: ConceptEmbedder) -> PolicyBot:
    storage = Storage.memory()
    bot = PolicyBot(
        settings=Settings(db_path=str(tmp_path / "policybot.db"), retriever="semantic"),
        storage=storage,
        unlogged=UnloggedQuestions.beside(storage.path),
        mark=ProcessMark.beside(storage.path),
        retriever=HybridRetriever(storage, embedder),
        answerer=ExtractiveAnswerer(3),
    )
    bot.ensure_policy()
    return bot


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[PolicyBot]:
    bot = hybrid_bot(tmp_path, ConceptEmbedder())
    yield bot
    bot.storage.close()


async def place_all(bot: PolicyBot) -> list[set[str]]:
    for texts in UNBRIDGED_BY_WORDS.values():
        for n, text in enumerate(texts):
            answer = await bot.ask(IncomingQuestion(text, asker=f"U{n}"))
            assert answer.question_id is not None
            if answer.answered:
                bot.escalate(answer.question_id)
    return [{m.text for m in bot.review.members(g.id)} for g in bot.review.groups("open")]


async def test_embeddings_group_paraphrases_words_alone_keep_apart(
    embedded: PolicyBot, bot: PolicyBot
) -> None:
    grouped = await place_all(embedded)
    for topic, texts in UNBRIDGED_BY_WORDS.items():
        assert set(texts) in grouped, topic
    assert len(grouped) == len(UNBRIDGED_BY_WORDS)
    # The lexical bot (no embedder) leaves every phrasing on its own.
    alone = await place_all(bot)
    assert all(len(group) == 1 for group in alone)


async def test_a_failing_embedder_falls_back_to_words_and_loses_no_question(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The policy's clauses and the first question embed; then the model breaks.
    bot = hybrid_bot(tmp_path, ConceptEmbedder(fail_after=2))
    try:
        with caplog.at_level(logging.ERROR):
            grouped = await place_all(bot)
        placed = sum(len(group) for group in grouped)
        assert placed == sum(len(texts) for texts in UNBRIDGED_BY_WORDS.values())
        assert bot.review.vectors is not None and bot.review.vectors.broken
        assert "grouping by words alone" in caplog.text
    finally:
        bot.storage.close()


def test_the_grouping_set_is_split_by_topic_with_several_phrasings_each() -> None:
    halves = {
        half: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for half, path in SETS.items()
    }
    topics = {half: {row["topic"] for row in rows} for half, rows in halves.items()}
    assert not topics["tuning"] & topics["held out"]
    for rows in halves.values():
        texts = [row["question"] for row in rows]
        assert len(texts) == len(set(texts))
        real = [t for t in {row["topic"] for row in rows} if not t.startswith("nm-")]
        assert len(real) >= 12
        for topic in real:
            assert sum(row["topic"] == topic for row in rows) >= 3, topic
        for row in rows:
            if "near_miss_of" in row:
                assert row["near_miss_of"] in real


def test_pairs_count_grouped_and_belonging_together() -> None:
    pairs = pairs_of(["a", "a", "a", "b", "b"], [1, 1, 2, 1, 3])
    assert pairs == Pairs(true_pos=1, false_pos=2, false_neg=3)
    assert pairs.precision == pytest.approx(1 / 3) and pairs.recall == pytest.approx(1 / 4)
    assert replace(pairs, false_pos=0).precision == 1.0
