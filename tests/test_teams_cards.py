"""The Adaptive Cards the Teams adapter renders from the neutral Answer."""

from __future__ import annotations

from typing import Any

from adapters import teams_cards
from bot.core import PolicyBot
from bot.models import Answer, Citation, IncomingQuestion


def runs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "TextRun" else []
        return found + [run for value in node.values() for run in runs(value)]
    if isinstance(node, list):
        return [run for item in node for run in runs(item)]
    return []


def answer(*citations: Citation, answered: bool = True, question_id: int | None = 7) -> Answer:
    return Answer(
        question="q",
        answered=answered,
        lead="The policy addresses this in section 4.2 Confidential information.",
        citations=citations,
        confidence=0.8,
        question_id=question_id,
        policy_version="Social media policy v3",
    )


CLAUSE = Citation(
    clause_id=1,
    document="social-media",
    section="4.2",
    title="Confidential information",
    text="Never post *unreleased* figures or customer_names.",
    score=0.9,
    owner="Legal",
)


def test_answer_card_quotes_each_clause_literally_under_its_section() -> None:
    other = Citation(2, "social-media", "4.3", "Customers", "Ask before naming a customer.", 0.5)
    card_json = teams_cards.answer_card(answer(CLAUSE, other))
    assert card_json["type"] == "AdaptiveCard" and card_json["version"] == "1.4"
    texts = [run["text"] for run in runs(card_json["body"])]
    assert texts[0].startswith("The policy addresses this in section 4.2")
    assert texts.index("4.2 Confidential information") < texts.index(
        "“Never post *unreleased* figures or customer_names.”"
    )
    assert "4.3 Customers" in texts and "“Ask before naming a customer.”" in texts
    assert "Owner: Legal" in texts and "Policy: Social media policy v3" in texts
    # Policy text is never run through Markdown: only RichTextBlock/TextRun carry it.
    assert all(block["type"] != "TextBlock" for block in card_json["body"])


def test_answer_card_names_the_document_when_clauses_come_from_several() -> None:
    other = Citation(2, "email-policy", "1.1", "Scope", "Applies to all email.", 0.5)
    texts = [run["text"] for run in runs(teams_cards.answer_card(answer(CLAUSE, other)))]
    assert "social-media, 4.2 Confidential information" in texts
    assert "email-policy, 1.1 Scope" in texts


def test_answer_card_actions_carry_the_question_id() -> None:
    actions = teams_cards.answer_card(answer(CLAUSE))["actions"]
    assert [(a["type"], a["title"], a["data"]) for a in actions] == [
        ("Action.Submit", "Helpful", {"policybot": "helpful", "question_id": 7}),
        ("Action.Submit", "Not helpful", {"policybot": "not_helpful", "question_id": 7}),
        (
            "Action.Submit",
            "Ask the policy team",
            {"policybot": "ask_policy_team", "question_id": 7},
        ),
    ]


def test_unanswered_or_unlogged_answers_have_no_feedback_actions() -> None:
    assert "actions" not in teams_cards.answer_card(answer(answered=False))
    assert "actions" not in teams_cards.answer_card(answer(CLAUSE, question_id=None))


async def test_review_card_lists_open_questions_without_askers(bot: PolicyBot) -> None:
    assert "No open questions" in runs(teams_cards.review_card([]))[0]["text"]
    for n in range(teams_cards.REVIEW_LIMIT + 2):
        answer = await bot.ask(IncomingQuestion(f"is cafeteria {n} open?", asker=f"U{n}"))
        if answer.question_id and answer.answered:
            bot.escalate(answer.question_id)
    questions = bot.open_questions()
    assert len(questions) == teams_cards.REVIEW_LIMIT + 2
    texts = [run["text"] for run in runs(teams_cards.review_card(questions))]
    assert texts[0] == f"{teams_cards.REVIEW_LIMIT + 2} open questions"
    assert sum("cafeteria" in t for t in texts) == teams_cards.REVIEW_LIMIT
    assert any("not covered by the policy" in t for t in texts)
    assert texts[-1].startswith("…and 2 more")
    assert not any(str(q["asker"]) in t for q in questions for t in texts)


def test_llm_verdict_is_shown_above_the_summary() -> None:
    base = answer(CLAUSE)
    grounded = Answer(
        question=base.question,
        answered=True,
        lead="In short (my summary, not policy text): only after the results are public.",
        citations=base.citations,
        confidence=base.confidence,
        question_id=base.question_id,
        verdict="depends",
        source="llm",
    )
    card = teams_cards.answer_card(grounded)
    assert [r["text"] for r in runs(card["body"][0])] == [grounded.headline]
    assert grounded.headline
    assert teams_cards.answer_summary(grounded).startswith(grounded.headline)
