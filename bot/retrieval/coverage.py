"""Whether the policy answers a question: a small model over signals that mean the same on any
policy, scoring each clause the answer would cite.

Raw cosine similarity and BM25 depend on the policy: a long, wordy policy has some clause
fairly close to any question, a terse one has none close to many it does answer. So the
signals are relative to the policy asked of. For each of the top `CITED` clauses:

- `cosine`: its similarity to the question (MiniLM vectors are comparable across texts);
- `cosine_gap`: how far it is below the nearest clause of the whole policy;
- `cosine_z`: how far it stands above the question's typical similarity to this policy's
  clauses, in that policy's spread (a policy-relative z-score), less the z-score the nearest
  of that many unrelated clauses would reach by chance (about sqrt(2 ln n) for n clauses), so
  a long policy's best clause does not stand out merely for being the best of many;
- `question_margin`: how far the nearest clause stands above the runner-up;
- `coverage`, `section_coverage`: the share of the question's words, weighted by rarity in
  this policy, that the clause and its whole section use;
- `unknown`: the share of that weight on words the policy never uses at all;
- `words`: the question's length (log of its content words, capped);
- `rank`: log of its place in the answer (1 to CITED);
- `rarest`: whether it uses the rarest of the question's words that the policy uses at all
  (an expansion counting its weight): coverage is a share, so a clause can match most of a
  question's words yet miss the one that says what the question is about.

A logistic regression over them (standardised) gives P(this clause answers the question); the
confidence is the best of the cited clauses' (an answer is right when one of them is). It is
fitted by bench/train_coverage.py (fixed seeds; the command is its SHIPPED fitting's) on
public data only. The committed model reads three of the signals (`cosine`,
`question_margin`, `coverage`; the others keep their slots with weight 0), fitted on the
tuning questions alone, eval/tuning's included: of thousands of fittings, the one
leave-one-tuning-policy-out preferred, which on policies it never saw answers wrongly less
often than the ten-signal model before it (PolicyQA's dev split and cross-kind negatives, a
privacy-policy question asked of a social-media policy and the reverse, are measured). The
weights are `coverage.npz` beside this file, with the two raw probabilities the script
fitted on the tuning sets as the answered and uncertain cut points; `CoverageModel.confidence`
maps them onto the default POLICYBOT_MIN_CONFIDENCE and POLICYBOT_UNCERTAIN_CONFIDENCE, so
the defaults stay meaningful.
"""

from __future__ import annotations

import itertools
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.config import DEFAULT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_CONFIDENCE
from bot.retrieval.lexical import Evidence

MODEL_FILE = Path(__file__).with_name("coverage.npz")

FEATURES = (
    "cosine",
    "cosine_gap",
    "cosine_z",
    "question_margin",
    "coverage",
    "section_coverage",
    "unknown",
    "words",
    "rank",
    "rarest",
)
#: How many of the ranked clauses an answer cites, and the model scores.
CITED = 3

#: Below this many clauses a policy's spread of similarities says little: the z-score is 0.
MIN_CLAUSES_FOR_SPREAD = 5
#: The spread is at least this, so a policy of near-identical clauses cannot inflate z.
MIN_SPREAD = 0.02


@dataclass(frozen=True)
class Cited:
    """What the model reads about one clause an answer would cite."""

    cosine: float  # its similarity to the question
    coverage: float  # the share of the question (by rarity) it uses
    section_coverage: float  # the same for its whole section
    rarest: float = 0.0  # whether it uses the rarest question word the policy uses (0..1)


def signals(
    similarity: Any, cited: Sequence[Cited], lexical: Evidence
) -> tuple[tuple[float, ...], ...]:
    """One feature vector per cited clause (in rank order), from the question's cosine
    similarity to every clause of the policy (a numpy vector) and the lexical evidence."""
    import numpy as np

    values = np.sort(np.asarray(similarity, dtype=np.float64))[::-1]
    best = float(values[0]) if len(values) else 0.0
    runner_up = float(values[1]) if len(values) > 1 else 0.0
    median = float(np.median(values)) if len(values) else 0.0
    spread = max(float(values.std()), MIN_SPREAD) if len(values) else 1.0
    use_spread = len(values) >= MIN_CLAUSES_FOR_SPREAD
    chance = math.sqrt(2 * math.log(len(values))) if use_spread else 0.0
    return tuple(
        (
            clause.cosine,
            best - clause.cosine,
            (clause.cosine - median) / spread - chance if use_spread else 0.0,
            best - runner_up,
            clause.coverage,
            clause.section_coverage,
            lexical.unknown,
            lexical.words,
            math.log(rank),
            clause.rarest,
        )
        for rank, clause in enumerate(cited[:CITED], 1)
    )


@dataclass(frozen=True)
class CoverageModel:
    """Standardised logistic regression over a (question, clause) pair, with the two fitted
    cut points (raw probabilities of the best cited clause)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    answer_point: float  # from this raw probability a question is answered
    uncertain_point: float  # from this one the closest clauses are shown

    def confidence(self, cited: Sequence[Sequence[float]]) -> float:
        """The calibrated confidence of an answer citing these clauses (their vectors)."""
        return self.calibrated(self.answer_probability(cited))

    def answer_probability(self, cited: Sequence[Sequence[float]]) -> float:
        return max((self.probability(v) for v in cited), default=0.0)

    def probability(self, vector: Sequence[float]) -> float:
        z = self.intercept + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.weights, vector, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def calibrated(self, raw: float) -> float:
        """Monotone, piecewise linear map of [0, 1] onto itself sending the uncertain and
        answer points to the default uncertain and answer thresholds."""
        knots = (
            (0.0, 0.0),
            (self.uncertain_point, DEFAULT_UNCERTAIN_CONFIDENCE),
            (self.answer_point, DEFAULT_MIN_CONFIDENCE),
            (1.0, 1.0),
        )
        raw = min(max(raw, 0.0), 1.0)
        for (x0, y0), (x1, y1) in itertools.pairwise(knots):
            if raw <= x1:
                return y0 + (raw - x0) * (y1 - y0) / (x1 - x0) if x1 > x0 else y1
        return 1.0

    def arrays(self) -> dict[str, Any]:
        import numpy as np

        return {
            "features": np.array(self.features),
            "mean": np.array(self.mean),
            "scale": np.array(self.scale),
            "weights": np.array(self.weights),
            "intercept": np.array(self.intercept),
            "answer_point": np.array(self.answer_point),
            "uncertain_point": np.array(self.uncertain_point),
        }

    def save(self, path: Path) -> None:
        import numpy as np

        with path.open("wb") as file:
            np.savez(file, **self.arrays())


class ModelFileError(ValueError):
    """The coverage model's file is missing, damaged or for other signals."""


def read(path: Path) -> CoverageModel:
    import numpy as np

    try:
        with path.open("rb") as file, np.load(file, allow_pickle=False) as data:
            model = CoverageModel(
                features=tuple(str(f) for f in data["features"]),
                mean=tuple(float(v) for v in data["mean"]),
                scale=tuple(float(v) for v in data["scale"]),
                weights=tuple(float(v) for v in data["weights"]),
                intercept=float(data["intercept"]),
                answer_point=float(data["answer_point"]),
                uncertain_point=float(data["uncertain_point"]),
            )
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path.name}: {error}") from error
    if model.features != FEATURES or not (
        len(model.mean) == len(model.scale) == len(model.weights) == len(FEATURES)
    ):
        raise ModelFileError(f"{path.name}: fitted on {model.features}, not {FEATURES}")
    if not 0.0 < model.uncertain_point <= model.answer_point < 1.0:
        raise ModelFileError(f"{path.name}: cut points out of order")
    return model


@lru_cache(maxsize=1)
def shipped() -> CoverageModel:
    """The committed model, read once per process."""
    return read(MODEL_FILE)
