"""`python -m bench ranking` measures alternatives against the hybrid as it ships: its
`shipped` row must order clauses exactly as `HybridRetriever` does, or every comparison in
it would be against something the bot does not do."""

from __future__ import annotations

import pytest

from bot.evaluation import load_questions
from bot.policies import PolicyLibrary
from bot.retrieval.semantic import HybridRetriever, semantic_available
from bot.store.database import Storage
from tests.conftest import BUNDLED_POLICY
from tests.test_retrieval import HashingEmbedder

pytestmark = pytest.mark.skipif(not semantic_available(), reason="numpy engine not installed")


def test_the_shipped_row_ranks_as_the_hybrid_retriever_does() -> None:
    from bench import ranking
    from bench.quality import CachedEmbedder
    from bench.sets import ROOT, EvalSet

    storage = Storage.memory()
    version = PolicyLibrary(storage).load_file(BUNDLED_POLICY).version.id
    questions = [q for q in load_questions(ROOT / "eval" / "bundled-policy.jsonl") if q.covered][
        :25
    ]
    embedder = HashingEmbedder()
    asked = ranking.collect(
        [EvalSet("bundled", storage, [((version,), questions)])], CachedEmbedder(embedder)
    )
    hybrid = HybridRetriever(storage, embedder)
    assert len(asked) == len(questions)
    for question, one in zip(questions, asked, strict=True):
        found = hybrid.assess(question.question, (version,))
        assert found is not None
        order = ranking.ALTERNATIVES["shipped"](one)
        top = [
            int(one.ids[i])
            for i in sorted(range(len(order)), key=lambda i: (-order[i], one.ids[i]))[:3]
        ]
        assert top == [s.stored.id for s in found.ranked[:3]], question.question
    # The table reads every alternative and the fitted one, with both pooled columns.
    text = ranking.table(asked)
    assert ranking.FITTED in text and ranking.POOLED_HELD_OUT in text
