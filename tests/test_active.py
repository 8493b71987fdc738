"""The active policy one question sees: which lexical counts measure rarity."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Retrieval
from bot.retrieval.active import lexical_of
from bot.retrieval.lexical import LexicalRetriever
from bot.retrieval.semantic import HybridRetriever
from bot.store.database import Storage


class NothingRetriever:
    """A retriever with no lexical counts of its own (a benchmark peer, say)."""

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        return Retrieval(question, (), 0.0, tuple(version_ids))


def test_rarity_comes_from_the_lexical_retriever_behind_any_retriever() -> None:
    storage = Storage.memory()
    lexical = LexicalRetriever(storage)
    hybrid = HybridRetriever(storage)  # the model loads on the first question, not here
    assert lexical_of(lexical, storage) is lexical
    assert lexical_of(hybrid, storage) is hybrid.lexical
    other = lexical_of(NothingRetriever(), storage)
    assert isinstance(other, LexicalRetriever) and other.storage is storage
