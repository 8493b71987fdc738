"""Ranking alternatives to the hybrid's fusion, measured on every labeled set (recall@3 at
threshold 0, over the answerable questions): `python -m bench ranking [--policyqa]`.

Each alternative reorders the same pool the hybrid ranks (the lexical candidates with the
embeddings' nearest clauses added), so only the ordering differs. What is tried:

- `shipped`: the hybrid as shipped, SIMILARITY_SHARE x cosine + the rest x the lexical rank;
- `dense`: cosine alone (the clause's heading and text embedded, as shipped);
- `sentence max-sim`: each sentence of a clause embedded beside the clause (heading first),
  its best sentence's cosine mixed into the clause's (a long clause dilutes a one-sentence
  match);
- `heading path`: the whole heading path embedded with the text, not only the nearest title;
- `lead-in`: a list item embedded after the clause before it when that one ends in a colon;
- `section max`: a clause also scored by the best cosine in its section;
- `feedback`: pseudo-relevance feedback, the question's vector moved towards the mean of its
  three nearest clauses before ranking;
- `reciprocal rank`: reciprocal-rank fusion of the cosine and lexical rankings;
- `fitted fusion`: a logistic model over those signals (cosine, sentence max-sim, lexical
  rank, coverage, BM25, section max, gap to the best, both rankings' places) fitted on the
  tuning sets only (each question weighing the same); a tuning set's figure is its
  leave-one-policy-out one, fitted without it.

Nothing here is on the bot's path; an alternative is adopted only if it wins on the held-out
sets without losing on the tuning ones.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.fit import fit_logistic
from bench.quality import CachedEmbedder, bench_embedder
from bench.sets import TUNING_SETS, EvalSet, all_sets, embedder_trains_on_policyqa
from bot.models import StoredClause
from bot.retrieval.lexical import LexicalRetriever
from bot.retrieval.semantic import (
    DENSE_CANDIDATES,
    SIMILARITY_SHARE,
    clause_passage,
)
from bot.retrieval.vocabulary import without_pleasantries

#: A sentence ends at . ! ? ; or : followed by a capital, a digit or an opening bracket/quote.
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[A-Z0-9(\"'])")
#: Sentences shorter than this many words are folded into the clause vector only.
SENTENCE_WORDS = 3
POOLED_TUNING = "tuning sets, pooled"
POOLED_HELD_OUT = "held-out sets, pooled (PolicyQA apart)"
#: PolicyQA's dev documents bench/train_embedder.py trains on, and the others.
POLICYQA_EMBEDDER_TRAINED = "policyqa-embedder-trained"
POLICYQA_EMBEDDER_UNSEEN = "policyqa-embedder-unseen"


@dataclass
class Asked:
    """One answerable question against its policy: per clause of the policy, the signals."""

    set_name: str
    gold: np.ndarray  # bool, the clauses that answer it
    ids: np.ndarray
    pooled: np.ndarray  # bool, the clauses the hybrid ranks
    signals: dict[str, np.ndarray]
    clause_vectors: np.ndarray
    question_vector: np.ndarray


def _sentences(stored: StoredClause) -> list[str]:
    clause = stored.clause
    heading = clause.heading_path[-1] if clause.heading_path else ""
    parts = [p for p in SENTENCE_END.split(clause.text) if len(p.split()) >= SENTENCE_WORDS]
    return [f"{heading}. {p}" if heading else p for p in parts or [clause.text]]


def _path_passage(stored: StoredClause) -> str:
    clause = stored.clause
    path = " > ".join(clause.heading_path)
    return f"{path}. {clause.text}" if path else clause.text


def _lead_in_passages(clauses: Sequence[StoredClause], sections: np.ndarray) -> list[str]:
    out = []
    for i, stored in enumerate(clauses):
        clause = stored.clause
        heading = clause.heading_path[-1] if clause.heading_path else ""
        before = clauses[i - 1].clause.text if i else ""
        lead = (
            before if i and sections[i - 1] == sections[i] and before.rstrip().endswith(":") else ""
        )
        out.append(". ".join(part for part in (heading, lead, clause.text) if part))
    return out


def _places(values: np.ndarray) -> np.ndarray:
    """1 for the highest value, 2 for the next, ... (ties in index order)."""
    places = np.empty(len(values))
    places[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    return places


def _section_best(sections: np.ndarray, values: np.ndarray) -> np.ndarray:
    best = np.full(int(sections.max()) + 1, -1.0)
    np.maximum.at(best, sections, values)
    return np.asarray(best[sections])


def collect(sets: Sequence[EvalSet], embedder: CachedEmbedder) -> list[Asked]:
    asked: list[Asked] = []
    for eval_set in sets:
        lexical = LexicalRetriever(eval_set.storage)
        for index, (versions, questions) in enumerate(eval_set.parts):
            set_name = eval_set.name
            if set_name == "policyqa":  # apart: the policies the tuned embedder saw, and not
                trained = embedder_trains_on_policyqa(index)
                set_name = POLICYQA_EMBEDDER_TRAINED if trained else POLICYQA_EMBEDDER_UNSEEN
            covered = [q for q in questions if q.covered]
            clauses = eval_set.storage.clauses(versions)
            if not covered or not clauses:
                continue
            keys: dict[tuple[int, tuple[str, ...]], int] = {}
            sections = np.array(
                [keys.setdefault((c.version_id, c.clause.heading_path), len(keys)) for c in clauses]
            )
            vectors = embedder.encode([clause_passage(c) for c in clauses])
            path_vectors = embedder.encode([_path_passage(c) for c in clauses])
            lead_vectors = embedder.encode(_lead_in_passages(clauses, sections))
            sentence_texts, owners = [], []
            for i, stored in enumerate(clauses):
                for sentence in _sentences(stored):
                    sentence_texts.append(sentence)
                    owners.append(i)
            sentence_vectors = embedder.encode(sentence_texts)
            owner = np.array(owners)
            query_vectors = embedder.encode([without_pleasantries(q.question) for q in covered])
            for question, query in zip(covered, query_vectors, strict=True):
                cosine = vectors @ query
                best_sentence = np.full(len(clauses), -1.0)
                np.maximum.at(best_sentence, owner, sentence_vectors @ query)
                nearest = np.argsort(-cosine, kind="stable")[:DENSE_CANDIDATES]
                found = lexical.assess(
                    question.question, versions, extra=[clauses[i] for i in nearest]
                )
                by_id = {s.stored.id: s for s in found.scores}
                zero = (0.0, 0.0, 0.0)
                triple = [
                    (s.rank, s.coverage, s.bm25) if (s := by_id.get(c.id)) else zero
                    for c in clauses
                ]
                lexical_rank, coverage, bm25 = (np.array(col) for col in zip(*triple, strict=True))
                asked.append(
                    Asked(
                        set_name,
                        np.array([question.matches(c) for c in clauses]),
                        np.array([c.id for c in clauses]),
                        np.array([c.id in by_id for c in clauses]),
                        {
                            "cosine": cosine,
                            "sentence": best_sentence,
                            "path": path_vectors @ query,
                            "lead_in": lead_vectors @ query,
                            "lexical": lexical_rank,
                            "coverage": coverage,
                            "bm25": bm25,
                            "section": _section_best(sections, cosine),
                            "sections": sections.astype(float),
                        },
                        vectors,
                        query,
                    )
                )
    return asked


Scorer = Callable[[Asked], np.ndarray]


def fused(similarity: Callable[[Asked], np.ndarray]) -> Scorer:
    """The shipped fusion over some other similarity."""

    def score(a: Asked) -> np.ndarray:
        value = (
            SIMILARITY_SHARE * np.maximum(similarity(a), 0)
            + (1 - SIMILARITY_SHARE) * (a.signals["lexical"])
        )
        return np.where(a.pooled, value, -np.inf)

    return score


def _feedback(a: Asked, nearest: int = 3, weight: float = 0.3) -> np.ndarray:
    cosine = a.signals["cosine"]
    top = np.argsort(-cosine, kind="stable")[:nearest]
    moved = a.question_vector + weight * a.clause_vectors[top].mean(axis=0)
    return np.asarray(a.clause_vectors @ (moved / np.linalg.norm(moved)))


def _reciprocal(a: Asked, k: float = 10.0) -> np.ndarray:
    value = 1 / (k + _places(a.signals["cosine"])) + 1 / (k + _places(a.signals["lexical"]))
    return np.where(a.pooled, value, -np.inf)


FUSION_SIGNALS = ("cosine", "sentence", "lexical", "coverage", "bm25", "section")


def _fusion_features(a: Asked) -> np.ndarray:
    s = a.signals
    columns = [s[name] for name in FUSION_SIGNALS]
    columns += [
        s["cosine"].max() - s["cosine"],
        np.log(_places(s["cosine"])),
        np.log(_places(s["lexical"] + 1e-6 * s["cosine"])),
    ]
    return np.stack(columns, axis=1)


def fit_fusion(asked: Sequence[Asked]) -> Scorer:
    x = np.concatenate([_fusion_features(a)[a.pooled] for a in asked])
    y = np.concatenate([a.gold[a.pooled] for a in asked]).astype(float)
    weights = np.concatenate([np.full(a.pooled.sum(), 1.0 / a.pooled.sum()) for a in asked])
    intercept, coefficients = fit_logistic(x, y, weights=weights * len(asked))

    def score(a: Asked) -> np.ndarray:
        return np.where(a.pooled, _fusion_features(a) @ coefficients + intercept, -np.inf)

    return score


def out_of_fold(tuning: Sequence[Asked], name: str) -> float:
    """A tuning set's recall@3 under a fusion fitted on the other tuning sets (nan alone)."""
    others = [a for a in tuning if a.set_name != name]
    if not others:
        return float("nan")
    return recall_at_3(fit_fusion(others), [a for a in tuning if a.set_name == name])


def recall_at_3(scorer: Scorer, asked: Sequence[Asked]) -> float:
    hits = [a.gold[np.lexsort((a.ids, -scorer(a)))[:3]].any() for a in asked]
    return float(np.mean(hits)) if hits else float("nan")


ALTERNATIVES: dict[str, Scorer] = {
    "shipped": fused(lambda a: a.signals["cosine"]),
    "dense": lambda a: a.signals["cosine"],
    "sentence max-sim (0.3)": fused(
        lambda a: 0.7 * a.signals["cosine"] + 0.3 * a.signals["sentence"]
    ),
    "sentence max-sim (0.5)": fused(
        lambda a: 0.5 * a.signals["cosine"] + 0.5 * a.signals["sentence"]
    ),
    "heading path": fused(lambda a: a.signals["path"]),
    "lead-in": fused(lambda a: a.signals["lead_in"]),
    "section max (0.1)": lambda a: (
        fused(lambda b: b.signals["cosine"])(a) + 0.1 * a.signals["section"]
    ),
    "feedback": fused(_feedback),
    "reciprocal rank": _reciprocal,
}
FITTED = "fitted fusion"


def table(asked: Sequence[Asked]) -> str:
    names = list(dict.fromkeys(a.set_name for a in asked))
    tuning = [a for a in asked if a.set_name in TUNING_SETS]
    held_out = [
        a for a in asked if a.set_name not in TUNING_SETS and not a.set_name.startswith("policyqa")
    ]
    columns = [*names, POOLED_TUNING, POOLED_HELD_OUT]
    groups = {n: [a for a in asked if a.set_name == n] for n in names}
    groups[POOLED_TUNING], groups[POOLED_HELD_OUT] = tuning, held_out
    lines = [
        "| alternative | "
        + " | ".join(c.split("-")[0] if c in names else c for c in columns)
        + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for label, scorer in ALTERNATIVES.items():
        cells = [recall_at_3(scorer, groups[c]) for c in columns]
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    if tuning:
        fitted = fit_fusion(tuning)
        cells = []
        for column in columns:
            if column in TUNING_SETS:
                cells.append(out_of_fold(tuning, column))
            elif column == POOLED_TUNING:
                hits = [out_of_fold(tuning, n) * len(groups[n]) for n in names if n in TUNING_SETS]
                cells.append(sum(hits) / len(tuning))
            else:
                cells.append(recall_at_3(fitted, groups[column]))
        lines.append(f"| {FITTED} (tuning: LOPO) | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    lines += ["", "As shipped, by set: recall@1 / recall@3 / MRR.", ""]
    lines += [
        "| set | questions | recall@1 | recall@3 | MRR |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    shipped = ALTERNATIVES["shipped"]
    for column in columns:
        places = [place(shipped, a) for a in groups[column]]
        if places:
            at_1, at_3 = np.mean([p <= 1 for p in places]), np.mean([p <= 3 for p in places])
            mrr = np.mean([1 / p for p in places])
            lines.append(f"| {column} | {len(places)} | {at_1:.3f} | {at_3:.3f} | {mrr:.3f} |")
    return "\n".join(lines)


def place(scorer: Scorer, a: Asked) -> int:
    """Where the first clause that answers comes in the scorer's order (1 = first)."""
    hits = np.flatnonzero(a.gold[np.lexsort((a.ids, -scorer(a)))])
    return int(hits[0]) + 1 if len(hits) else len(a.ids) + 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ranking", description=__doc__)
    parser.add_argument("--policyqa", action="store_true", help="PolicyQA's dev split too")
    parser.add_argument(
        "--only", action="append", default=[], help="this set alone (repeatable): a quick check"
    )
    args = parser.parse_args(argv)
    embedder: Any = CachedEmbedder(bench_embedder())
    sets = all_sets(include_policyqa=args.policyqa)
    if args.only:
        sets = [s for s in sets if s.name in args.only]
        if not sets:
            parser.error(f"--only: no such set among {', '.join(s.name for s in all_sets(False))}")
    print(table(collect(sets, embedder)), flush=True)
