"""Retrieval quality floors on our labeled questions; measured, then set a little below.

The default (lexical) retriever is what `make test` installs, so it is what these floors
hold; the semantic hybrid gets its own floors when the `semantic` extra is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.quality import answer_all, paired_difference
from bench.sets import SHARED_POLICIES, external_sets
from bot.config import DEFAULT_MIN_CONFIDENCE
from bot.core import PolicyBot
from bot.evaluation import LabeledQuestion, Outcome, evaluate, load_questions, summarize
from bot.retrieval.lexical import LexicalRetriever
from bot.retrieval.semantic import HybridRetriever, semantic_available

QUESTIONS = Path(__file__).parent.parent / "eval" / "bundled-policy.jsonl"

#: Lexical floors per external set: (recall@1, recall@3, MRR, not-covered F1), set a little
#: below what was measured on the enlarged sets (60-80 questions each) with the confidence
#: model fitted on them as written and wrapped in chat: 0.61/0.73/0.67/0.50,
#: 0.44/0.60/0.53/0.61, 0.72/0.83/0.78/0.44, 0.48/0.67/0.59/0.55, 0.32/0.40/0.39/0.41.
EXTERNAL_FLOORS = {
    "gitlab-team-member-social-media-policy": (0.57, 0.69, 0.63, 0.45),
    "northcoastchurch-social-media-acceptable-use": (0.37, 0.56, 0.49, 0.55),
    "osc-hatch-act-faq": (0.68, 0.79, 0.74, 0.40),
    "stonybrook-social-media-guidelines": (0.44, 0.62, 0.55, 0.50),
    "ucd-social-media-policy-colleges-schools-units": (0.28, 0.36, 0.35, 0.36),
}

needs_shared = pytest.mark.skipif(
    not SHARED_POLICIES.is_dir(), reason="shared evaluation policies are not on this machine"
)


def test_labeled_set_is_large_and_about_a_fifth_uncovered() -> None:
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 60
    uncovered = sum(not q.covered for q in questions) / len(questions)
    assert 0.15 <= uncovered <= 0.3


def test_bundled_policy_retrieval_floors(bot: PolicyBot) -> None:
    assert isinstance(bot.retriever, LexicalRetriever)
    report = evaluate(
        "bundled", load_questions(QUESTIONS), bot.retrieve, bot.settings.min_confidence
    )
    # measured: r@1 0.62, r@3 0.75, MRR 0.69, not-covered P 0.48 R 0.87 F1 0.62, 240 chars
    assert report.recall_at_1 >= 0.59
    assert report.recall_at_3 >= 0.72
    assert report.mrr >= 0.66
    assert report.unanswered_precision >= 0.44
    assert report.unanswered_recall >= 0.8
    assert report.unanswered_f1 >= 0.57
    assert report.mean_cited_chars <= 300


@needs_shared
def test_external_policy_floors_lexical() -> None:
    sets = {s.name: s for s in external_sets()}
    assert set(sets) == set(EXTERNAL_FLOORS)
    for name, (r1, r3, mrr, f1) in EXTERNAL_FLOORS.items():
        eval_set = sets[name]
        report = answer_all(eval_set, LexicalRetriever(eval_set.storage)).report(
            DEFAULT_MIN_CONFIDENCE
        )
        assert report.recall_at_1 >= r1, (name, report)
        assert report.recall_at_3 >= r3, (name, report)
        assert report.mrr >= mrr, (name, report)
        assert report.mean_cited_chars <= 360, (name, report)
        assert report.unanswered_f1 >= f1, (name, report)


@needs_shared
@pytest.mark.skipif(not semantic_available(), reason="the semantic extra is not installed")
def test_semantic_hybrid_beats_lexical_on_every_external_set() -> None:
    from bench.quality import CachedEmbedder
    from bot.retrieval.semantic import MiniLMEmbedder

    sets = external_sets()
    embedder = CachedEmbedder(MiniLMEmbedder())  # one model; questions embedded in one batch
    embedder.prime([q.question for s in sets for _, qs in s.parts for q in qs])
    for eval_set in sets:
        lexical = answer_all(eval_set, LexicalRetriever(eval_set.storage))
        hybrid = answer_all(eval_set, HybridRetriever(eval_set.storage, embedder))
        assert hybrid.report(0.4).mrr >= lexical.report(0.4).mrr, eval_set.name


def test_gold_matching_by_section_title_and_lines(bot: PolicyBot) -> None:
    stored = bot.storage.clauses([v.id for v in bot.storage.active_versions()])
    clause = next(s for s in stored if s.clause.section == "3.3")
    assert LabeledQuestion("q", sections=("3.3",)).matches(clause)
    assert LabeledQuestion("q", sections=("3",)).matches(clause)
    assert not LabeledQuestion("q", sections=("3.31",)).matches(clause)
    assert LabeledQuestion("q", sections=(clause.clause.section_title.upper(),)).matches(clause)
    line = clause.clause.line_start
    assert LabeledQuestion("q", lines=((line, line),)).matches(clause)
    assert not LabeledQuestion("q", lines=((1, 2),)).matches(clause)


def test_sweep_settings_reach_the_ranking_and_are_restored() -> None:
    import bot.retrieval.lexical
    from bench.sets import EvalSet, bundled_set
    from bench.sweep import measure, setting

    sets = [bundled_set()]

    def lexical(eval_set: EvalSet) -> LexicalRetriever:
        return LexicalRetriever(eval_set.storage)

    shipped = measure(sets, lexical)
    with setting(bot.retrieval.lexical, "FTS_WEIGHTS", (1.0, 0.0, 0.0)):
        text_only = measure(sets, lexical)
    assert bot.retrieval.lexical.FTS_WEIGHTS == (1.0, 0.5, 0.3)
    assert text_only != shipped  # headings carry weight in the shipped ranking
    assert measure(sets, lexical) == shipped
    with pytest.raises(RuntimeError), setting(bot.retrieval.lexical, "BM25_SHARE", 0.9):
        raise RuntimeError("a failed measurement")
    assert bot.retrieval.lexical.BM25_SHARE == 0.4


def _outcomes(ranks: Sequence[int | None], flagged: list[bool] | None = None) -> list[Outcome]:
    flags = flagged or [False] * len(ranks)
    return [
        Outcome(covered=True, rank=r, flagged=f, cited_chars=(100,))
        for r, f in zip(ranks, flags, strict=True)
    ]


def test_paired_difference_tells_a_clear_gap_from_one_question() -> None:
    twenty_right = _outcomes([1] * 20)
    one_less = _outcomes([1] * 19 + [2])
    half = _outcomes([1] * 10 + [None] * 10)
    same = paired_difference(twenty_right, twenty_right, "recall_at_1")
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    assert not same.clear
    small = paired_difference(one_less, twenty_right, "recall_at_1")
    assert small.value == pytest.approx(-0.05)
    assert small.low < 0 <= small.high  # one question of twenty: not a clear gap
    assert not small.clear
    large = paired_difference(half, twenty_right, "mrr")
    assert large.value == pytest.approx(-0.5)
    assert large.clear and large.high < 0


def test_paired_difference_of_not_covered_f1() -> None:
    covered = _outcomes([1] * 8)
    uncovered_found = [Outcome(False, None, True, ()) for _ in range(4)]
    uncovered_missed = [Outcome(False, None, False, ()) for _ in range(4)]
    mine = paired_difference(covered + uncovered_found, covered + uncovered_missed, "unanswered_f1")
    assert mine.value == pytest.approx(1.0)
    assert mine.clear
    assert summarize("x", covered + uncovered_found).unanswered_f1 == 1.0
    with pytest.raises(ValueError):
        paired_difference(covered, covered[:-1], "mrr")


def test_chat_around_a_question_does_not_pass_for_coverage(bot: PolicyBot) -> None:
    """Uncovered questions padded with chat are still found uncovered, about as often as when
    asked plainly (the model was fitted on other padding than this)."""
    uncovered = [q for q in load_questions(QUESTIONS) if not q.covered]
    threshold = bot.settings.min_confidence

    def flagged(before: str, after: str = "") -> int:
        return sum(
            bot.retrieve(f"{before}{q.question}{after}").confidence < threshold for q in uncovered
        )

    plain = flagged("")
    assert plain >= 0.8 * len(uncovered)
    assert flagged("hi team, sorry to bother you but I was wondering, ") == plain
    assert flagged("Good morning! Hope you are well. ", " Thanks in advance!") == plain
    assert flagged("this might be a weird one but ") >= 0.6 * plain


#: Groundedness floors, (caught, kept) of each set's (unsupported, faithful) cases, set a little
#: below the measured run (`python -m bench groundedness`): built on 27/27 and 37/37, held out
#: 9/10 and 11/12.
GROUNDEDNESS_FLOORS = {"built on": (26, 36), "held out": (8, 10)}


def test_groundedness_bench_floors() -> None:
    from bench.groundedness import Figures, run_all

    runs = run_all()
    assert set(runs) == set(GROUNDEDNESS_FLOORS)
    for name, (caught, kept) in GROUNDEDNESS_FLOORS.items():
        figures = Figures.of(runs[name])
        # A case is invalid when retrieval does not hand the model the clause it cites (a
        # retrieval change, not the check's): at most one per set, and the page lists it.
        assert figures.invalid <= 1, (name, figures)
        assert figures.caught >= caught, (name, figures)
        assert figures.kept >= kept, (name, figures)
        # Each set holds at least as many faithful paraphrases as unsupported summaries.
        assert figures.faithful >= figures.unsupported, (name, figures)
