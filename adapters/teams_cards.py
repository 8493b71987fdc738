"""The neutral Answer (and the bot's other replies) as Adaptive Cards for Microsoft Teams.

Plain dicts in, plain dicts out: this module knows the card format, not the Bot Framework.
Policy text goes into RichTextBlock/TextRun, which Teams shows literally, so a clause with
`*` or `_` in it is quoted as written instead of being read as Markdown.
"""

from __future__ import annotations

from typing import Any

from bot.models import Answer, Citation

CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

#: The `action` values a card's Action.Submit carries back in the activity's `value`.
HELPFUL = "helpful"
NOT_HELPFUL = "not_helpful"
ASK_POLICY_TEAM = "ask_policy_team"
ACTIONS = (HELPFUL, NOT_HELPFUL, ASK_POLICY_TEAM)

#: Marks a submit as ours, so other payloads are never mistaken for feedback.
SUBMIT_KEY = "policybot"

#: How many open questions `review` shows in one card.
REVIEW_LIMIT = 15

REVIEW_REASON_LABELS = {
    "not_covered": "not covered by the policy",
    "not_helpful": "answer marked not helpful",
    "ask_policy_team": "asker wants the policy team",
}


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": body,
        # Teams otherwise squeezes cards to a narrow column; quotes need the width.
        "msteams": {"width": "Full"},
    }
    if actions:
        content["actions"] = actions
    return content


def literal(text: str, **run: Any) -> dict[str, Any]:
    """Text shown exactly as written (no Markdown), wrapped."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **run}]}


def heading(text: str, *, size: str = "Default", subtle: bool = False) -> dict[str, Any]:
    return literal(text, weight="Bolder", size=size, isSubtle=subtle)


def submit(title: str, action: str, question_id: int) -> dict[str, Any]:
    return {
        "type": "Action.Submit",
        "title": title,
        "data": {SUBMIT_KEY: action, "question_id": question_id},
    }


def citation_block(citation: Citation, *, with_document: bool) -> dict[str, Any]:
    reference = citation.reference or citation.document
    if with_document and citation.reference:
        reference = f"{citation.document}, {reference}"
    items = [heading(reference), literal(f"“{citation.text}”", italic=True)]
    if citation.owner:
        items.append(literal(f"Owner: {citation.owner}", isSubtle=True, size="Small"))
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def answer_card(answer: Answer) -> dict[str, Any]:
    """Lead, each cited clause quoted under its section, and the feedback actions."""
    several_documents = len({c.document for c in answer.citations}) > 1
    body: list[dict[str, Any]] = []
    if answer.headline and answer.answered:
        body.append(heading(answer.headline))
    body.append(literal(answer.lead))
    body.extend(citation_block(c, with_document=several_documents) for c in answer.citations)
    if answer.policy_version:
        body.append(literal(f"Policy: {answer.policy_version}", isSubtle=True, size="Small"))
    actions: list[dict[str, Any]] = []
    # An unanswered question is already on the review list; asking for feedback on
    # "the policy does not cover this" would only add noise.
    if answer.question_id is not None and answer.answered:
        actions = [
            submit("Helpful", HELPFUL, answer.question_id),
            submit("Not helpful", NOT_HELPFUL, answer.question_id),
            submit("Ask the policy team", ASK_POLICY_TEAM, answer.question_id),
        ]
    return card(body, actions)


def answer_summary(answer: Answer) -> str:
    """The text beside the card: what notifications and screen readers show."""
    if answer.headline and answer.answered:
        return f"{answer.headline} {answer.lead}"
    return answer.lead


def review_card(questions: list[dict[str, Any]]) -> dict[str, Any]:
    """The open questions for the policy team, newest first; askers are never shown."""
    if not questions:
        return card([heading("No open questions."), literal("The review list is empty.")])
    shown = questions[:REVIEW_LIMIT]
    plural = "s" if len(questions) != 1 else ""
    body: list[dict[str, Any]] = [heading(f"{len(questions)} open question{plural}", size="Medium")]
    for row in shown:
        reason = REVIEW_REASON_LABELS.get(str(row.get("review_reason") or ""), "open")
        asked = str(row.get("asked_at") or "")[:16].replace("T", " ")
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    literal(
                        f"#{row['id']} · {reason} · {asked} · {row.get('platform', '')}",
                        isSubtle=True,
                        size="Small",
                    ),
                    literal(str(row.get("text") or "")),
                ],
            }
        )
    if len(questions) > len(shown):
        body.append(
            literal(
                f"…and {len(questions) - len(shown)} more; `policybot questions list` shows all.",
                isSubtle=True,
            )
        )
    return card(body)
