"""The neutral Answer (and the bot's other replies) as Adaptive Cards for Microsoft Teams.

Plain dicts in, plain dicts out: this module knows the card format, not the Bot Framework.
Policy text goes into RichTextBlock/TextRun, which Teams shows literally, so a clause with
`*` or `_` in it is quoted as written instead of being read as Markdown.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from bot import messages
from bot.models import Answer, Citation
from bot.notify import ReviewNotice
from bot.use_cases import MAX_ANSWER_CHARS, ChangeSummary, Group, UploadResult

CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

#: The `action` values a card's Action.Submit carries back in the activity's `value`.
HELPFUL = "helpful"
NOT_HELPFUL = "not_helpful"
ASK_POLICY_TEAM = "ask_policy_team"
ACTIONS = (HELPFUL, NOT_HELPFUL, ASK_POLICY_TEAM)

#: Marks a submit as ours, so other payloads are never mistaken for feedback.
SUBMIT_KEY = "policybot"

#: Policy admins' actions on an upload's card; the value carries `version_id`.
ACTIVATE_VERSION = "activate_version"
DISCARD_VERSION = "discard_version"
RETIRE_DOCUMENT = "retire_document"
VERSION_ACTIONS = (ACTIVATE_VERSION, DISCARD_VERSION, RETIRE_DOCUMENT)
#: The policy team's actions on a question group's card; the value carries `group_id`.
ANSWER_GROUP = "answer_group"
DISMISS_GROUP = "dismiss_group"
GROUP_ACTIONS = (ANSWER_GROUP, DISMISS_GROUP)
#: A review-channel card's question id, in its group actions' value: marks the press as
#: coming from that card, which is then updated to show how the group was handled.
NOTICE_QUESTION = "question_id"
#: The id of a group card's answer box: its text arrives in the value under this key.
ANSWER_INPUT = "answer"

#: How many question groups `review` shows at once (one card each).
REVIEW_LIMIT = 10
#: How many clause changes an upload's card lists; the CLI's `policy diff` lists them all.
CHANGES_LIMIT = 10
#: A group's sample question is cut to this many characters on its card.
SAMPLE_CHARS = 300
#: A question is cut to this many characters on its review-channel card (as on Slack's).
NOTICE_CHARS = 2000

REVIEW_REASON_LABELS = {
    "not_covered": "not covered by the policy",
    "uncertain": "possibly not covered: the bot was unsure of its closest clauses",
    "not_helpful": "answer marked not helpful",
    "ask_policy_team": "asker wants the policy team",
    "failed": "the bot failed to answer",
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
    return action_submit(title, action, question_id=question_id)


def action_submit(title: str, action: str, **data: Any) -> dict[str, Any]:
    return {"type": "Action.Submit", "title": title, "data": {SUBMIT_KEY: action, **data}}


def document_name(citation: Citation) -> str:
    return citation.document_title or citation.document


def citation_block(
    citation: Citation, *, with_document: bool, position: int | None = None
) -> dict[str, Any]:
    reference = citation.reference or document_name(citation)
    if with_document and citation.reference:
        reference = f"{document_name(citation)}, {reference}"
    if position is not None:
        reference = f"[{position}] {reference}"  # the number the message text cites it by
    items = [heading(reference), literal(f"“{citation.text}”", italic=True)]
    if citation.owner:
        items.append(literal(f"Owner: {citation.owner}", isSubtle=True, size="Small"))
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def answer_card(answer: Answer, *, lead_in_text: bool = False) -> dict[str, Any]:
    """Lead, each cited clause quoted under its section, and the feedback actions; an uncertain
    answer under a heading saying it may not be what was asked. With `lead_in_text` the
    message's text carries the verdict and lead with numbered citations, so the card does not
    repeat them and numbers its quotes instead."""
    several_documents = len({c.document for c in answer.citations}) > 1
    body: list[dict[str, Any]] = []
    if answer.taken_as:  # a follow-up read with the conversation before it
        body.append(literal(answer.taken_as, isSubtle=True, size="Small"))
    if answer.headline and answer.answered and not lead_in_text:
        body.append(heading(answer.headline))
    if answer.uncertain:
        body.append(literal(f"❔ {messages.UNCERTAIN_MARK}", weight="Bolder", color="Warning"))
        body.append(literal(messages.UNCERTAIN_NOTE, isSubtle=True, size="Small"))
    if not lead_in_text:
        body.append(literal(answer.lead))
    body.extend(
        citation_block(
            c, with_document=several_documents, position=position if lead_in_text else None
        )
        for position, c in enumerate(answer.citations, start=1)
    )
    if answer.citations and not several_documents:
        body.append(literal(f"— {document_name(answer.citations[0])}", isSubtle=True))
    if answer.policy_version:
        body.append(literal(f"Policy: {answer.policy_version}", isSubtle=True, size="Small"))
    actions: list[dict[str, Any]] = []
    # An unanswered question is already on the review list; asking for feedback on
    # "the policy does not cover this" would only add noise. An uncertain answer's closest
    # clauses may be the right ones, so it is rated; it is with the policy team already.
    if answer.question_id is not None and (answer.answered or answer.uncertain):
        actions = [
            submit("Helpful", HELPFUL, answer.question_id),
            submit("Not helpful", NOT_HELPFUL, answer.question_id),
        ]
        if answer.answered:
            actions.append(submit("Ask the policy team", ASK_POLICY_TEAM, answer.question_id))
    return card(body, actions)


def answer_summary(answer: Answer) -> str:
    """The text beside the card: what notifications and screen readers show."""
    if answer.headline and answer.answered:
        return f"{answer.headline} {answer.lead}"
    if answer.uncertain:
        return f"{messages.UNCERTAIN_MARK}. {answer.lead}"
    return answer.lead


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- policy administration -----------------------------------------------------------------------
def _change_blocks(changes: ChangeSummary) -> list[dict[str, Any]]:
    entries: list[list[dict[str, Any]]] = []
    for clause in changes.added:
        entries.append([heading(f"Added: {clause.reference}"), literal(f"“{clause.text}”")])
    for clause in changes.removed:
        removed = literal(f"“{clause.text}”", strikethrough=True)
        entries.append([heading(f"Removed: {clause.reference}"), removed])
    for change in changes.changed:
        where = change.new.reference
        if change.old.reference != change.new.reference:
            where = f"{change.old.reference} → {change.new.reference}"
        items = [heading(f"Changed: {where}")]
        if change.old.text == change.new.text:
            items.append(literal("(text unchanged; it moved)", isSubtle=True))
        else:
            items += [
                literal(f"Was: “{change.old.text}”", isSubtle=True),
                literal(f"Now: “{change.new.text}”"),
            ]
        entries.append(items)
    blocks = [
        {"type": "Container", "separator": True, "spacing": "Medium", "items": items}
        for items in entries[:CHANGES_LIMIT]
    ]
    if len(entries) > CHANGES_LIMIT:
        blocks.append(
            literal(
                f"…and {len(entries) - CHANGES_LIMIT} more changes; "
                f"`policybot policy diff {changes.target.reference}` lists them all.",
                isSubtle=True,
            )
        )
    return blocks


def upload_card(result: UploadResult) -> dict[str, Any]:
    """What an upload would change against the active version, with Activate / Discard /
    Retire."""
    version = result.version
    source = version.source_name or "the upload"
    if result.created:
        title = f"Read {version.clause_count} clauses from {source}"
    else:
        title = f"{source} is already stored as version {version.id}; no new version"
    facts = [
        {"title": "Document", "value": version.title or version.document},
        {"title": "Version", "value": f"{version.display}, {version.status}"},
    ]
    if result.changes.base is not None:
        facts.append({"title": "Compared with", "value": result.changes.base.display})
    body: list[dict[str, Any]] = [
        heading(title, size="Medium"),
        {"type": "FactSet", "facts": facts},
        literal(result.changes.headline()),
    ]
    if result.example_note:
        body.append(literal(result.example_note, isSubtle=True))
    body.extend(_change_blocks(result.changes))
    actions = []
    if version.status != "active":
        actions.append(action_submit("Activate", ACTIVATE_VERSION, version_id=version.id))
    if version.status == "staged":
        actions.append(action_submit("Discard", DISCARD_VERSION, version_id=version.id))
    if version.status == "active":
        body.append(literal("This version is already active.", isSubtle=True))
    if version.status == "active" or result.changes.base is not None:
        # The document has an active version: it can be taken out of answering from here.
        actions.append(retire_action(version.document, version.id))
    return card(body, actions)


def retire_action(document: str, version_id: int) -> dict[str, Any]:
    """Retire, behind a confirmation: Adaptive Cards in Teams have no confirm dialog, so the
    button opens one (Action.ShowCard) whose own submit does it."""
    confirm = card(
        [
            literal(
                f"Questions are no longer answered from {document} until an admin activates "
                "one of its versions again."
            )
        ],
        [action_submit(f"Retire {document}", RETIRE_DOCUMENT, version_id=version_id)],
    )
    del confirm["$schema"], confirm["msteams"]
    return {"type": "Action.ShowCard", "title": "Retire", "card": confirm}


def upload_summary(result: UploadResult) -> str:
    parts = [result.changes.headline(), result.example_note]
    return " ".join(p for p in parts if p)


# -- the review list ---------------------------------------------------------------------------
def group_card(group: Group) -> dict[str, Any]:
    """One question group for the policy team: an answer box, Answer and Dismiss.

    Askers are never shown; the sample is the question that started the group.
    """
    reasons = ", ".join(REVIEW_REASON_LABELS.get(r, r) for r in group.reasons) or "open"
    seen = group.first_seen[:10]
    if group.last_seen[:10] != seen:
        seen = f"{seen} to {group.last_seen[:10]}"
    plural = "s" if group.count != 1 else ""
    closest = group.reference
    if closest and group.document:
        closest = f"{group.document}, {closest}"
    body: list[dict[str, Any]] = [
        heading(f"{group.count} question{plural}: “{shorten(group.sample, SAMPLE_CHARS)}”"),
        {
            "type": "FactSet",
            "facts": [
                {"title": "Owner", "value": group.owner or "(unrouted: no section is close)"},
                {"title": "Closest section", "value": closest or "(none)"},
                {"title": "Asked", "value": seen},
                {"title": "Why", "value": reasons},
                {"title": "Group", "value": f"#{group.id}"},
            ],
        },
        answer_box(),
    ]
    return card(body, group_actions(group.id))


def answer_box() -> dict[str, Any]:
    """The text box a reviewer writes a group's answer in (sent with Answer)."""
    return {
        "type": "Input.Text",
        "id": ANSWER_INPUT,
        "isMultiline": True,
        "maxLength": MAX_ANSWER_CHARS,
        "placeholder": "The answer everyone who asked will be sent",
        "label": "Answer",
        "isRequired": True,
        "errorMessage": "Write the answer first, or press Dismiss.",
    }


def group_actions(group_id: int, **data: Any) -> list[dict[str, Any]]:
    """Answer and Dismiss for a group; `data` rides along in both submits."""
    return [
        action_submit("Answer", ANSWER_GROUP, group_id=group_id, **data),
        # Dismissing needs no answer, so the answer box is not validated for it.
        {
            **action_submit("Dismiss", DISMISS_GROUP, group_id=group_id, **data),
            "associatedInputs": "none",
        },
    ]


def review_notice_card(notice: ReviewNotice, settled: Group | None = None) -> dict[str, Any]:
    """A question that has just gone on the review list, for the policy team's channel
    (POLICYBOT_TEAMS_REVIEW_CONVERSATION), with an answer box, Answer and Dismiss for its
    group. The asker is named only when the notice carries one (POLICYBOT_SHOW_ASKERS).

    With `settled` (its group, once answered or dismissed from the card) the same card says
    how it was handled, and has no box or buttons left to press."""
    facts = [{"title": "Why", "value": REVIEW_REASON_LABELS.get(notice.reason, notice.reason)}]
    if notice.question_id is not None:
        facts.append({"title": "Question", "value": f"#{notice.question_id}"})
    if notice.group_id is not None:
        facts.append({"title": "Group", "value": f"#{notice.group_id}"})
    body: list[dict[str, Any]] = [
        heading("Question for the policy team"),
        # The asker's own words: literal, so their Markdown characters are shown as typed.
        literal(f"“{shorten(notice.question, NOTICE_CHARS)}”", italic=True),
        {"type": "FactSet", "facts": facts},
    ]
    asker = notice.asker_name or notice.asker
    if asker:
        # A name or platform id can hold "_" or "*", which a FactSet value would read as
        # Markdown.
        body.append(literal(f"Asked by {asker}", isSubtle=True))
    if settled is not None:
        body.extend(settled_blocks(settled))
        return card(body)
    if notice.group_id is None:
        # Not logged yet, so in no group: nothing to answer on this card.
        body.append(
            literal(
                "Open question groups are listed by sending review to the bot in a personal "
                "chat, and by policybot questions list.",
                isSubtle=True,
                size="Small",
            )
        )
        return card(body)
    body.append(answer_box())
    body.append(
        literal(
            f"Answer sends your answer to everyone who asked in group #{notice.group_id}, and "
            "the bot gives it to similar questions from then on. Dismiss closes the group; "
            "nobody is told.",
            isSubtle=True,
            size="Small",
        )
    )
    return card(body, group_actions(notice.group_id, **{NOTICE_QUESTION: notice.question_id}))


def settled_blocks(group: Group) -> list[dict[str, Any]]:
    """How a group was handled, for the review-channel card it was handled from."""
    who = f" by {group.answered_by}" if group.answered_by else ""
    plural = "s" if group.count != 1 else ""
    if group.status == "answered":
        return [
            heading(f"Answered{who} (group #{group.id}, {group.count} question{plural})"),
            literal(group.answer),
        ]
    return [heading(f"{group.status.capitalize()}{who} (group #{group.id}); nobody is told")]


def review_notice_summary(notice: ReviewNotice) -> str:
    return f"Question for the policy team: {shorten(notice.question, SAMPLE_CHARS)}"


def review_heading(total: int, shown: int) -> str:
    if not total:
        return "No open question groups: the review list is empty."
    plural = "s" if total != 1 else ""
    text = f"{total} open question group{plural}, busiest first."
    if shown < total:
        text += f" Showing {shown}; `policybot questions list` shows all."
    return text


#: What a bot's whole message to Teams may weigh (Teams refuses larger ones), less room for
#: the activity around the card: a digest whose chart would not fit goes without it.
CARD_BUDGET = 26_000


def digest_card(text: str, chart: bytes = b"", chart_alt: str = "") -> dict[str, Any]:
    """The weekly digest, line by line, literally (group samples are employees' words); with
    `chart` (PNG bytes), the weekly chart after the first line, inline as a data URI (an
    Adaptive Card Image takes one from schema 1.2), when the card still fits CARD_BUDGET."""
    lines = text.splitlines()
    body: list[dict[str, Any]] = [heading(lines[0] if lines else "policybot digest")]
    for line in lines[1:]:
        if not line.strip():
            continue
        # "Top open groups:" and the like head a list; the rest are sentences or list entries.
        body.append(heading(line) if line.endswith(":") else literal(line.strip()))
    if chart:
        image = {
            "type": "Image",
            "url": "data:image/png;base64," + base64.b64encode(chart).decode("ascii"),
            "altText": chart_alt,
            "size": "Stretch",
        }
        with_chart = card([body[0], image, *body[1:]])
        if len(json.dumps(with_chart)) <= CARD_BUDGET:
            return with_chart
        body.append(literal(messages.DIGEST_CHART_TOO_LARGE, isSubtle=True))
    return card(body)
