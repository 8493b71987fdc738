"""Retrieval quality floors on our labeled questions; measured, then set a little below.

The default (lexical) retriever is what `make test` installs, so it is what these floors
hold; the semantic hybrid gets its own floors when the `semantic` extra is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.quality import Answers, answer_all, paired_difference
from bench.sets import SHARED_POLICIES, external_sets
from bot.answering.outcome import Outcome
from bot.config import DEFAULT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_CONFIDENCE
from bot.core import PolicyBot
from bot.evaluation import (
    Cuts,
    LabeledQuestion,
    QuestionResult,
    evaluate,
    load_questions,
    summarize,
)
from bot.retrieval.lexical import LexicalRetriever
from bot.retrieval.semantic import HybridRetriever, semantic_available
from tests.conftest import RunCli

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

SHIPPED = Cuts(DEFAULT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_CONFIDENCE)

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
    report = evaluate("bundled", load_questions(QUESTIONS), bot.retrieve, Cuts.of(bot.settings))
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
        report = answer_all(eval_set, LexicalRetriever(eval_set.storage)).report(SHIPPED)
        assert report.recall_at_1 >= r1, (name, report)
        assert report.recall_at_3 >= r3, (name, report)
        assert report.mrr >= mrr, (name, report)
        assert report.mean_cited_chars <= 360, (name, report)
        assert report.unanswered_f1 >= f1, (name, report)


@needs_shared
@pytest.mark.skipif(not semantic_available(), reason="the embedding model is not installed")
def test_semantic_hybrid_beats_lexical_on_every_external_set() -> None:
    from bench.quality import CachedEmbedder
    from bot.retrieval.semantic import MiniLMEmbedder

    sets = external_sets()
    embedder = CachedEmbedder(MiniLMEmbedder())  # one model; questions embedded in one batch
    embedder.prime([q.question for s in sets for _, qs in s.parts for q in qs])
    for eval_set in sets:
        lexical = answer_all(eval_set, LexicalRetriever(eval_set.storage))
        hybrid = answer_all(eval_set, HybridRetriever(eval_set.storage, embedder))
        assert hybrid.report(SHIPPED).mrr >= lexical.report(SHIPPED).mrr, eval_set.name


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


def _result(
    covered: bool,
    rank: int | None = None,
    outcome: Outcome = Outcome.ANSWERED,
    confidence: float = 0.5,
    cited_chars: tuple[int, ...] = (100,),
) -> QuestionResult:
    return QuestionResult(covered, rank, confidence, outcome, cited_chars)


def _outcomes(ranks: Sequence[int | None]) -> list[QuestionResult]:
    return [_result(True, r) for r in ranks]


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
    uncovered_found = [_result(False, outcome=Outcome.NOT_COVERED) for _ in range(4)]
    uncovered_missed = [_result(False) for _ in range(4)]
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


#: Eight questions, one of each way a question can end, for hand-computed figures.
EIGHT = [
    _result(True, 1, Outcome.ANSWERED, 0.9, (300, 500)),  # useful
    _result(True, 3, Outcome.UNCERTAIN, 0.3),  # useful: the right clause is shown
    _result(True, 5, Outcome.ANSWERED, 0.6),  # harmful: no right clause in the top 3
    _result(True, None, Outcome.NOT_COVERED, 0.1),
    _result(False, None, Outcome.ANSWERED, 0.6),  # harmful: answered, yet not covered
    _result(False, None, Outcome.UNCERTAIN, 0.3),  # useful
    _result(False, None, Outcome.NOT_COVERED, 0.1, ()),  # useful; nothing retrieved
    _result(True, 2, Outcome.NOT_COVERED, 0.2),  # the right clause found, then withheld
]


def test_what_the_user_gets_counted_by_hand() -> None:
    r = summarize("eight", EIGHT)
    assert (r.questions, r.covered) == (8, 5)
    assert (r.answered, r.uncertain, r.not_covered) == (3, 2, 3)
    assert r.useful == pytest.approx(4 / 8)
    assert r.harmful == pytest.approx(2 / 8)
    assert r.wrong_when_confident == pytest.approx(2 / 3)
    # Not answered = uncertain or not covered: 5 flagged, 2 of them uncovered, 1 uncovered missed.
    assert r.unanswered_precision == pytest.approx(2 / 5)
    assert r.unanswered_recall == pytest.approx(2 / 3)
    assert r.unanswered_f1 == pytest.approx(0.5)
    # 15 covered-uncovered pairs: 7 won, 3 tied (0.3-0.3, 0.6-0.6, 0.1-0.1) -> 8.5.
    assert r.confidence_auc == pytest.approx(8.5 / 15)
    # The ranking alone, whatever the outcome: ranks 1, 3, 5, none, 2 of 5 answerable.
    assert r.recall_at_1 == pytest.approx(1 / 5)
    assert r.recall_at_3 == pytest.approx(3 / 5)
    assert r.mrr == pytest.approx((1 + 1 / 3 + 1 / 5 + 1 / 2) / 5)
    assert r.mean_cited_chars == pytest.approx((300 + 500 + 6 * 100) / 8)


def test_confidence_auc_ties_count_a_half_and_needs_both_kinds() -> None:
    from bot.evaluation import confidence_auc, mann_whitney_auc

    assert mann_whitney_auc([0.5, 0.5], [0.5]) == 0.5
    assert mann_whitney_auc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert mann_whitney_auc([0.1], [0.9, 0.2]) == 0.0
    assert mann_whitney_auc([0.4, 0.6], [0.5]) == 0.5
    assert confidence_auc(_outcomes([1, 2, None])) is None  # no uncovered question
    assert summarize("covered only", _outcomes([1, 2])).confidence_auc is None


def test_nothing_answered_is_never_wrong_when_confident() -> None:
    quiet = [_result(True, 1, Outcome.UNCERTAIN), _result(False, None, Outcome.NOT_COVERED)]
    r = summarize("quiet", quiet)
    assert (r.answered, r.harmful, r.wrong_when_confident, r.useful) == (0, 0.0, 0.0, 1.0)


def _answers(rows: Sequence[tuple[bool, float, bool]]) -> Answers:
    """A set answered by a stand-in peer: (covered, its top score, right clause first)."""
    from bench.sets import EvalSet
    from bot.models import Clause, Retrieval, ScoredClause, StoredClause
    from bot.store.database import Storage

    right = StoredClause(1, 1, "p", Clause(text="right", section="1", section_title="One"))
    wrong = StoredClause(2, 1, "p", Clause(text="wrong", section="2", section_title="Two"))
    questions, retrieved = [], {}
    for n, (covered, score, found) in enumerate(rows):
        q = LabeledQuestion(f"q{n}", sections=("1",) if covered else ())
        ranked = (right,) if found else (wrong,)
        retrieved[q.question] = Retrieval(
            q.question, tuple(ScoredClause(c, score) for c in ranked), score, (1,)
        )
        questions.append(q)
    return Answers(EvalSet("stand-in", Storage.memory()), [(questions, retrieved)])


def test_peer_cut_points_fitted_on_scores() -> None:
    """Answering where not-covered F1 is best; uncertain where, below it, the unanswerable part
    from the answerable whose right clause is shown (Youden's J)."""
    from bench.quality import fit_cuts

    answers = _answers(
        [
            (True, 9.0, True),
            (True, 8.0, True),
            (True, 7.0, True),
            (False, 6.0, False),  # F1 best flagging from here down: 4 of 4, at precision 4/6
            (False, 5.0, False),
            (True, 4.0, True),  # below the answer cut, but its clause is worth showing
            (False, 3.0, False),  # J = 2/4 - 0 below 3.5, the best
            (True, 2.0, False),  # answerable, yet no right clause found: showing it helps none
            (False, 1.0, False),
        ]
    )
    cuts = fit_cuts([answers])
    assert cuts.answer_from == pytest.approx(6.5)
    assert cuts.uncertain_from == pytest.approx(3.5)
    report = answers.report(cuts)
    assert (report.answered, report.uncertain, report.not_covered) == (3, 3, 3)
    assert report.useful == pytest.approx(8 / 9) and report.harmful == 0.0


def test_leave_one_out_never_fits_on_the_set_it_measures() -> None:
    """Three small tuning sets where a high signal means covered, and a large one where it means
    the opposite, enough to turn any model fitted on it: left out, the odd set is measured by a
    model that learned only the others' rule (AUC 0); fitted on it too, it would score 1."""
    from bench.fit import Sample, auc, leave_one_out

    def rows(name: str, flipped: bool, values: range) -> list[Sample]:
        return [
            Sample(name, True, covered, (float(x if covered != flipped else -x),))
            for x in values
            for covered in (True, False)
        ]

    small = range(1, 4)
    samples = [*rows("a", False, small), *rows("b", False, small), *rows("c", False, small)]
    left_out = {
        row.set_name: row for row in leave_one_out([*samples, *rows("odd", True, range(1, 40))])
    }
    assert list(left_out) == ["a", "b", "c", "odd"]
    odd = left_out["odd"]
    assert auc(odd.probabilities, odd.covered) == 0.0
    assert len(odd.probabilities) == 78  # as written, in the set's order


def test_targets_hold_their_bounds() -> None:
    from dataclasses import replace

    from bench.__main__ import TARGETS

    base = summarize("eight", EIGHT)
    good = replace(
        base,
        wrong_when_confident=0.10,
        useful=0.80,
        recall_at_3=0.80,
        unanswered_f1=0.70,
        confidence_auc=0.85,
        mean_cited_chars=450.0,
    )
    assert [t.met(good) for t in TARGETS] == [True] * 6
    worse = replace(
        good,
        wrong_when_confident=0.11,
        useful=0.79,
        recall_at_3=0.79,
        unanswered_f1=0.69,
        confidence_auc=0.84,
        mean_cited_chars=451.0,
    )
    assert [t.met(worse) for t in TARGETS] == [False] * 6
    unmeasured = replace(good, covered=good.questions, confidence_auc=None)
    assert [t.met(unmeasured) for t in TARGETS][3:5] == [None, None]


ACME = """# Acme social media policy

## 1. Photos

Staff may post photos of company events on their personal accounts once the organiser
confirms that everyone pictured agreed to it.

## 2. Client names

Never name a client, a client project or a client's staff in a public post, even after the
client has announced the work itself.
"""

ACME_QUESTIONS = [
    {"question": "may I post photos of the company event?", "sections": ["1"]},
    {"question": "can I name our client in a public post?", "sections": ["2"]},
    {"question": "how many photos a week may I post on my personal accounts?", "sections": []},
]


def test_eval_command_reports_what_askers_get(run: RunCli, tmp_path: Path) -> None:
    """With the answering cut above any confidence every question is uncertain: all useful,
    none harmful; with both cuts at 0 every question is answered, the uncovered one harmfully."""
    import json

    policy = tmp_path / "acme.md"
    policy.write_text(ACME, encoding="utf-8")
    labeled = tmp_path / "acme.jsonl"
    labeled.write_text("\n".join(json.dumps(q) for q in ACME_QUESTIONS) + "\n", encoding="utf-8")

    def figures(answer_from: str) -> dict[str, object]:
        env = {"POLICYBOT_MIN_CONFIDENCE": answer_from, "POLICYBOT_UNCERTAIN_CONFIDENCE": "0"}
        result = run("eval", "--json", "--policy", str(policy), str(labeled), env=env)
        assert result.exit_code == 0, result.output
        report: dict[str, object] = json.loads(result.output)
        return report

    hedged = figures("1")
    assert (hedged["answered"], hedged["uncertain"], hedged["not_covered"]) == (0, 3, 0)
    assert (hedged["useful"], hedged["harmful"], hedged["wrong_when_confident"]) == (1.0, 0.0, 0.0)
    assert (hedged["unanswered_precision"], hedged["unanswered_recall"]) == (0.3333, 1.0)
    assert hedged["unanswered_f1"] == 0.5
    assert (hedged["recall_at_1"], hedged["recall_at_3"], hedged["mrr"]) == (1.0, 1.0, 1.0)
    assert isinstance(hedged["confidence_auc"], float)
    sure = figures("0")
    assert (sure["answered"], sure["uncertain"], sure["not_covered"]) == (3, 0, 0)
    assert (sure["useful"], sure["harmful"], sure["wrong_when_confident"]) == (
        0.6667,
        0.3333,
        0.3333,
    )
    assert sure["unanswered_f1"] == 0.0
    assert sure["confidence_auc"] == hedged["confidence_auc"]  # the cuts never move it
    text = run("eval", "--policy", str(policy), str(labeled)).output
    assert "wrong when confident" in text and "confidence AUC" in text


def test_readme_claims_are_written_between_their_markers_only(tmp_path: Path) -> None:
    from bench.__main__ import README, README_END, README_START, write_readme_claims

    assert README_START in README.read_text(encoding="utf-8")  # the README's claims are generated
    page = tmp_path / "README.md"
    page.write_text(f"before\n{README_START}\nold claim\n{README_END}\nafter\n", encoding="utf-8")
    write_readme_claims("new figures", page)
    assert page.read_text(encoding="utf-8") == (
        f"before\n{README_START}\nnew figures\n{README_END}\nafter\n"
    )
    unmarked = tmp_path / "other.md"
    unmarked.write_text("no markers\n", encoding="utf-8")
    write_readme_claims("new figures", unmarked)
    assert unmarked.read_text(encoding="utf-8") == "no markers\n"
