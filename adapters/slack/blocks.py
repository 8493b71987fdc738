"""Render the core's neutral answers as Slack Block Kit.

Every piece of text that came from a person or a policy file is escaped before it goes into
mrkdwn, so a question containing `<!channel>` or `<https://evil|bank>` pings and misleads no
one. Slack's limits (blocks per message, characters per text) are enforced here, by cutting
quotes at a sentence or word boundary, never mid-word.

One module, over 400 lines, on purpose: every builder of Slack markup sits beside `escape` and
the limits, so a reviewer checks one file to know nothing reaches Slack unescaped or over size,
and the action ids the listeners register are defined beside the buttons that carry them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot import messages
from bot.answering.checking import PostCheck
from bot.models import Answer, Citation
from bot.reading.clauses import split_sentences
from bot.use_cases import MAX_ANSWER_CHARS, Group, UploadResult, VersionInfo

Block = dict[str, Any]

#: Slack's limits (https://api.slack.com/reference/block-kit).
MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
#: The notification / fallback `text` of a message; Slack truncates beyond 4000.
MAX_FALLBACK_TEXT = 3000
#: A quoted clause longer than this is cut (clauses are normally well under it).
MAX_QUOTE = 1200
#: markdown_text per chat.startStream / appendStream / stopStream call.
MAX_STREAM_TEXT = 12000
#: What one append of a stream holds at most: a few words, a run without spaces cut.
MAX_STREAM_PIECE = 200
#: Elements of a context_actions block.
MAX_CONTEXT_ACTIONS = 5

#: Slack's feedback buttons under an answer (a `context_actions` block whose id carries the
#: question's id); the value says which was pressed.
ACTION_FEEDBACK = "policybot_feedback"
FEEDBACK_POSITIVE = "positive"
FEEDBACK_NEGATIVE = "negative"
FEEDBACK_BLOCK = "policybot_feedback_"
#: The hand-made Helpful / Not helpful buttons of answers posted before the feedback buttons:
#: still handled, so those messages keep working.
ACTION_HELPFUL = "policybot_helpful"
ACTION_NOT_HELPFUL = "policybot_not_helpful"
ACTION_ESCALATE = "policybot_escalate"
ACTION_SHARE = "policybot_share"
# An admin's staged upload (value: the version id).
ACTION_ACTIVATE = "policybot_activate"
ACTION_DISCARD = "policybot_discard"
ACTION_RETIRE = "policybot_retire"
# A question group on the review list (value: the group id).
ACTION_ANSWER_GROUP = "policybot_answer_group"
ACTION_DISMISS_GROUP = "policybot_dismiss_group"
#: The answer modal's callback id, and where its text input sits.
ANSWER_VIEW = "policybot_answer_view"
ANSWER_BLOCK = "policybot_answer"
ANSWER_INPUT = "answer"
#: Clause changes listed in an upload summary at most; the CLI's `policy diff` lists them all.
MAX_LISTED_CHANGES = 20

HELP_TEXT = (
    "*Ask me whether you may post something*, and I answer from the company's social media "
    "and electronic-communication policy, quoting the clauses.\n"
    "• Send me a direct message, or mention me in a channel (I answer in the thread).\n"
    "• `/policy <question>` answers privately; a button lets you share the answer.\n"
    "• On any message: *More actions (⋮) → Check this post against the policy* tells you "
    "privately which clauses apply to it.\n"
    "• Rate answers with 👍 / 👎 under them; *Ask the policy team* sends your question "
    "to the people who own the policy.\n"
    "• `/policy help` shows this."
)

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ESCAPABLE = re.compile("[&<>]")


def escape(text: str) -> str:
    """Make text safe to place in mrkdwn: no mentions, links or broadcasts from it."""
    return _ESCAPABLE.sub(lambda m: _ESCAPES[m.group(0)], text)


def cut(text: str, limit: int) -> str:
    """`text` if it fits, else its longest run of whole sentences (or words) that does, plus …"""
    if len(text) <= limit:
        return text
    budget = limit - 1  # room for the ellipsis
    kept = ""
    for sentence in split_sentences(text):
        candidate = f"{kept} {sentence}".strip()
        if len(candidate) > budget:
            break
        kept = candidate
    if len(kept) < budget // 2:
        # One sentence is most of the text: cut at the last word boundary instead.
        head = text[:budget]
        space = head.rfind(" ")
        kept = head[:space] if space > budget // 2 else head
    return kept.rstrip(" ,;:") + "…"


def escaped_cut(text: str, limit: int) -> str:
    """Cut, then escape; cut shorter if escaping pushed it over (escapes are longer)."""
    budget = limit
    out = escape(cut(text, budget))
    while len(out) > limit and budget > 1:
        budget = max(1, budget - (len(out) - limit))
        out = escape(cut(text, budget))
    return out


def quote(text: str) -> str:
    return "\n".join(f">{line}" for line in text.splitlines() or [""])


def plain(text: str, limit: int = MAX_SECTION_TEXT) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": escaped_cut(text, limit)}}


def mrkdwn(text: str) -> Block:
    """A section of our own mrkdwn (already escaped where it holds outside text)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION_TEXT]}}


def context(text: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": text[:MAX_CONTEXT_TEXT]}],
    }


def button(
    text: str, action_id: str, value: str, style: str = "", confirm: Block | None = None
) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:MAX_BUTTON_TEXT], "emoji": True},
        "action_id": action_id,
        "value": value[:MAX_BUTTON_VALUE],
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirmation(title: str, text: str, yes: str) -> Block:
    """The "are you sure?" dialog of a button that cannot be undone from Slack."""
    return {
        "title": {"type": "plain_text", "text": title[:100]},
        "text": {"type": "mrkdwn", "text": text[:300]},
        "confirm": {"type": "plain_text", "text": yes[:30]},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def plain_text(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": cut(text, limit) or " ", "emoji": True}


def citation_block(citation: Citation, with_document: bool) -> Block:
    where = f"{citation.document}, {citation.reference}" if with_document else citation.reference
    heading = f"*{escape(where or 'Policy')}*"
    room = MAX_SECTION_TEXT - len(heading) - 8
    text = escaped_cut(citation.text, min(MAX_QUOTE, room))
    return mrkdwn(f"{heading}\n{quote(text)}")


def citation_blocks(citations: Sequence[Citation], room: int) -> list[Block]:
    several_documents = len({c.document for c in citations}) > 1
    blocks = [citation_block(c, several_documents) for c in citations[:room]]
    if len(citations) > room:
        blocks[-1:] = [context(f"…and {len(citations) - room + 1} more clauses.")]
    return blocks


def uncertain_mark() -> Block:
    """Above an uncertain answer, so it never reads as a confident one."""
    return context(f"❔ *{messages.UNCERTAIN_MARK}.* {messages.UNCERTAIN_NOTE}")


def answer_blocks(answer: Answer, *, shareable: bool = False) -> list[Block]:
    """The lead, the quoted clauses, where they come from, and the feedback buttons; an
    uncertain answer under a mark saying it may not be what was asked."""
    blocks: list[Block] = [uncertain_mark()] if answer.uncertain else []
    blocks.append(plain(answer.lead))
    return blocks + cited_blocks(answer, shareable=shareable, room=MAX_MESSAGE_BLOCKS - len(blocks))


def cited_blocks(answer: Answer, *, shareable: bool, room: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """What follows an answer's lead, in at most `room` blocks: the quoted clauses, where they
    come from, the feedback buttons and the other actions (a streamed answer's lead is its
    streamed text, and these blocks end it)."""
    footer: list[Block] = []
    # A follow-up read with the conversation: the question it was taken as, under the lead.
    understood = [context(escape(answer.taken_as))] if answer.taken_as else []
    if answer.policy_version:
        footer.append(context(f"From {escape(answer.policy_version)}"))
    if answer.question_id is not None:
        footer.extend(action_blocks(answer, shareable=shareable))
    room -= len(footer) + len(understood)
    return understood + citation_blocks(answer.citations, room) + footer


def feedback_block(question_id: int) -> Block:
    """Slack's own 👍 / 👎 under an answer; the block's id names the question."""

    def side(text: str, value: str, label: str) -> Block:
        return {
            "text": {"type": "plain_text", "text": text},
            "value": value,
            "accessibility_label": label,
        }

    return {
        "type": "context_actions",
        "block_id": f"{FEEDBACK_BLOCK}{question_id}",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": ACTION_FEEDBACK,
                "positive_button": side("👍", FEEDBACK_POSITIVE, "This answer was helpful"),
                "negative_button": side("👎", FEEDBACK_NEGATIVE, "This answer was not helpful"),
            }
        ],
    }


def feedback_question(block_id: str) -> int | None:
    """The question a feedback block's id names; None for any other id."""
    number = block_id.removeprefix(FEEDBACK_BLOCK)
    if number == block_id or not number.isascii() or not number.isdigit():
        return None
    return int(number)


def action_blocks(answer: Answer, *, shareable: bool) -> list[Block]:
    value = str(answer.question_id)
    blocks: list[Block] = []
    if (answer.answered or answer.uncertain) and answer.question_id is not None:
        # An uncertain answer's closest clauses may be the right ones: worth rating too.
        blocks.append(feedback_block(answer.question_id))
    elements = []
    if answer.answered:
        # An uncertain or uncovered question is with the policy team already.
        elements.append(button("Ask the policy team", ACTION_ESCALATE, value))
    if shareable:
        elements.append(button("Share in channel", ACTION_SHARE, value, style="primary"))
    if elements:
        blocks.append(
            {"type": "actions", "block_id": f"policybot_answer_{value}", "elements": elements}
        )
    elif not blocks:
        # Not covered: the question is already with the policy team; say so instead.
        blocks.append(context("Your question is on the policy team's review list."))
    return blocks


#: Characters that would make streamed markdown a link or a mention: Slack's escapes for
#: `&<>`, a backslash before link brackets.
_MARKDOWN_ESCAPES = {**_ESCAPES, "[": "\\[", "]": "\\]"}
_MARKDOWN_ESCAPABLE = re.compile(r"[&<>\[\]]")


def markdown_escape(text: str) -> str:
    return _MARKDOWN_ESCAPABLE.sub(lambda m: _MARKDOWN_ESCAPES[m.group(0)], text)


def streamed_text(answer: Answer) -> str:
    """An answer's lead as the markdown a stream writes (under the uncertain mark if it is
    one), escaped like mrkdwn, as long as the lead of a message is."""
    lead = cut(answer.lead, MAX_SECTION_TEXT)
    text = markdown_escape(lead)
    if answer.uncertain:
        mark = markdown_escape(f"{messages.UNCERTAIN_MARK}. {messages.UNCERTAIN_NOTE}")
        text = f"❔ _{mark}_\n\n{text}"
    return text


def answer_text(answer: Answer) -> str:
    """The message's plain `text`: what notifications and screen readers show."""
    text = answer.plain_text()
    if answer.uncertain:
        text = f"{messages.UNCERTAIN_MARK}. {text}"
    return cut(text, MAX_FALLBACK_TEXT)


def shared_answer_blocks(answer: Answer, user_id: str) -> list[Block]:
    """An answer someone shared into the channel: who asked what, then the answer, no buttons."""
    asked = mrkdwn(
        f"<@{escape(user_id)}> asked: {escaped_cut(answer.question, MAX_SECTION_TEXT - 60)}"
    )
    body = [b for b in answer_blocks(answer) if b["type"] not in ("actions", "context_actions")]
    return [asked, *body][:MAX_MESSAGE_BLOCKS]


def check_blocks(check: PostCheck) -> list[Block]:
    """What applies to a post: each clause with the passages of the post that raised it."""
    blocks: list[Block] = [plain(check.lead)]
    room = MAX_MESSAGE_BLOCKS - 2
    for finding in check.findings[:room]:
        block = citation_block(finding.citation, with_document=False)
        passages = "; ".join(f"“{p}”" for p in finding.passages[:3])
        prompted = f"\n_Because of:_ {escaped_cut(passages, 400)}"
        text = block["text"]["text"]
        if len(text) + len(prompted) <= MAX_SECTION_TEXT:
            block["text"]["text"] = text + prompted
        blocks.append(block)
    hint = "Unsure? Ask with `/policy <question>` and rate or escalate the answer."
    if check.policy_version:
        hint = f"From {escape(check.policy_version)}. {hint}"
    blocks.append(context(hint))
    return blocks


def late_blocks(question: str, blocks: list[Block]) -> list[Block]:
    """A reply sent late, led by the apology and the question it answers (the asker may have
    written since)."""
    late = messages.LATE
    asked = f"{late}: you asked “{escaped_cut(question, 1500)}”" if question else late
    return [context(asked), *blocks[: MAX_MESSAGE_BLOCKS - 1]]


def help_blocks() -> list[Block]:
    return [mrkdwn(HELP_TEXT)]


def review_blocks(
    question: str,
    question_id: int | None,
    reason: str,
    asker: str = "",
    group_id: int | None = None,
) -> list[Block]:
    """A question for the policy team's channel; with its group, *Answer* / *Dismiss*."""
    why = {
        "not_covered": "The policy does not cover this question",
        "uncertain": "The bot was not sure the policy answers this question",
        "not_helpful": "An employee found the answer not helpful",
        "ask_policy_team": "An employee asked the policy team",
        "failed": "The bot failed to answer this question",
    }.get(reason, "A question needs review")
    who = f" (asked by <@{escape(asker)}>)" if asker else ""
    number = f" #{question_id}" if question_id is not None else ""
    blocks = [
        mrkdwn(f"*{why}*{who}. Question{number}:"),
        mrkdwn(quote(escaped_cut(question, MAX_SECTION_TEXT - 20))),
    ]
    if group_id is not None:
        blocks.append(group_actions(group_id))
    blocks.append(
        context(
            "Open questions are listed in the bot's App Home and in `policybot questions list`."
        )
    )
    return blocks


def group_actions(group_id: int) -> Block:
    value = str(group_id)
    dismiss = confirmation(
        "Dismiss these questions?",
        "They leave the review list and nobody who asked is told anything.",
        "Dismiss",
    )
    return {
        "type": "actions",
        "block_id": f"policybot_group_{value}",
        "elements": [
            button("Answer", ACTION_ANSWER_GROUP, value, style="primary"),
            button("Dismiss", ACTION_DISMISS_GROUP, value, confirm=dismiss),
        ],
    }


def group_summary(group: Group) -> str:
    """Count, owner, closest section and the sample question, as mrkdwn."""
    owner = group.owner or "unrouted"
    where = group.reference or "no section is close"
    asked = f"{group.count} asked" if group.count != 1 else "1 asked"
    reasons = ", ".join(r.replace("_", " ") for r in group.reasons)
    head = f"*#{group.id} · {asked}* · {escape(owner)} · closest: {escape(where)}"
    seen = f"first {group.first_seen[:10]}, last {group.last_seen[:10]}"
    if reasons:
        seen += f" · {escape(reasons)}"
    return f"{head}\n{quote(escaped_cut(group.sample, 1000))}\n_{seen}_"


def group_blocks(group: Group) -> list[Block]:
    return [mrkdwn(group_summary(group)), group_actions(group.id)]


def answer_modal(group: Group, private_metadata: str) -> Block:
    """The modal a reviewer writes a group's answer in."""
    blocks: list[Block] = [mrkdwn(group_summary(group))]
    if group.status != "open":
        when = (group.answered_at or group.closed_at)[:10]
        blocks.append(
            context(
                f"Already {group.status} on {escape(when)}. Sending an answer replaces the "
                "reviewed answer; askers not yet reached are sent the new one."
            )
        )
    element: Block = {
        "type": "plain_text_input",
        "action_id": ANSWER_INPUT,
        "multiline": True,
        "max_length": MAX_ANSWER_CHARS,
        "placeholder": plain_text("What should the people who asked be told?", 150),
    }
    if group.answer:
        element["initial_value"] = group.answer
    blocks.append(
        {
            "type": "input",
            "block_id": ANSWER_BLOCK,
            "label": plain_text("Answer, sent to everyone who asked", 2000),
            "hint": plain_text(
                "The bot also gives this answer, marked as reviewed, to similar questions.", 2000
            ),
            "element": element,
        }
    )
    return {
        "type": "modal",
        "callback_id": ANSWER_VIEW,
        "private_metadata": private_metadata[:3000],
        "title": plain_text("Answer questions", 24),
        "submit": plain_text("Send answer", 24),
        "close": plain_text("Cancel", 24),
        "blocks": blocks,
    }


# -- policy uploads --------------------------------------------------------------------------
def upload_head(result: UploadResult) -> str:
    version = result.version
    source = version.source_name or "the upload"
    if result.created:
        return f"Read {version.clause_count} clauses from {source} as {version.display}."
    return f"{source} is already stored as {version.display}; no new version was made."


def upload_text(result: UploadResult) -> str:
    parts = [upload_head(result), result.changes.headline(), result.example_note]
    return cut(" ".join(p for p in parts if p), MAX_FALLBACK_TEXT)


def _change_blocks(result: UploadResult) -> list[Block]:
    changes = result.changes
    entries: list[Block] = []
    for clause in changes.added:
        text = quote(escaped_cut(clause.text, MAX_QUOTE))
        entries.append(mrkdwn(f"*Added* {escape(clause.reference)}\n{text}"))
    for clause in changes.removed:
        text = quote(escaped_cut(clause.text, MAX_QUOTE))
        entries.append(mrkdwn(f"*Removed* {escape(clause.reference)}\n{text}"))
    for change in changes.changed:
        where = escape(change.new.reference)
        if change.old.reference != change.new.reference:
            where = f"{escape(change.old.reference)} → {where}"
        if change.old.text == change.new.text:
            entries.append(mrkdwn(f"*Moved* {where} (text unchanged)"))
            continue
        old = quote(escaped_cut(change.old.text, MAX_QUOTE))
        new = quote(escaped_cut(change.new.text, MAX_QUOTE))
        entries.append(mrkdwn(f"*Changed* {where}\n_Was:_\n{old}\n_Now:_\n{new}"))
    if len(entries) > MAX_LISTED_CHANGES:
        left = len(entries) - MAX_LISTED_CHANGES + 1
        entries[MAX_LISTED_CHANGES - 1 :] = [
            context(
                f"…and {left} more changes: `policybot policy diff {result.version.reference}` "
                "lists them all."
            )
        ]
    return entries


def upload_blocks(result: UploadResult) -> list[Block]:
    """What an upload changes against the active version, and what the admin can do next."""
    version = result.version
    blocks: list[Block] = [plain(upload_head(result)), plain(result.changes.headline())]
    if result.example_note:
        blocks.append(context(escape(result.example_note)))
    if not result.changes.has_changes:
        blocks.append(context("No clause is added, removed or changed."))
    blocks.extend(_change_blocks(result))
    value = str(version.id)
    elements: list[Block] = []
    if version.status != "active":
        elements.append(
            button(
                "Activate",
                ACTION_ACTIVATE,
                value,
                style="primary",
                confirm=confirmation(
                    "Activate this version?",
                    f"Questions are answered from {escape(version.display)} from then on. "
                    "An earlier version can be reactivated later.",
                    "Activate",
                ),
            )
        )
    if version.status == "staged":
        elements.append(button("Discard", ACTION_DISCARD, value, style="danger"))
    if version.status == "active" or result.changes.base is not None:
        # The document has an active version: it can be taken out of answering from here.
        elements.append(
            button(
                "Retire",
                ACTION_RETIRE,
                value,
                style="danger",
                confirm=confirmation(
                    f"Retire {version.document}?",
                    f"Questions are no longer answered from {escape(version.document)} "
                    "until an admin activates one of its versions again.",
                    "Retire",
                ),
            )
        )
    if version.status == "active":
        blocks.append(context(f"{escape(version.display)} is the active version already."))
    if elements:
        blocks.append(
            {"type": "actions", "block_id": upload_block_id(version.id), "elements": elements}
        )
    return blocks[:MAX_MESSAGE_BLOCKS]


def upload_block_id(version_id: int) -> str:
    return f"policybot_upload_{version_id}"


def settled_upload_blocks(
    original: Sequence[Block], version_id: int, outcome: str, user_id: str
) -> list[Block]:
    """The upload summary once Activate, Discard or Retire was chosen: the buttons give way to what
    happened and who did it."""
    kept = [b for b in original if b.get("block_id") != upload_block_id(version_id)]
    note = [plain(outcome), context(f"By <@{escape(user_id)}>")]
    return [*kept[: MAX_MESSAGE_BLOCKS - len(note)], *note]


def home_view(active: Sequence[VersionInfo], groups: Sequence[Group] | None) -> Block:
    """App Home: how to use the bot, the active policy; for the policy team, the open question
    groups, busiest first, each with *Answer* and *Dismiss*."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Policy bot"}},
        mrkdwn(HELP_TEXT),
        {"type": "divider"},
    ]
    if active:
        lines = [
            f"• *{escape(v.title or v.document)}*: {escape(v.display)}, active since "
            f"{escape((v.activated_at or v.uploaded_at)[:10])}, {v.clause_count} clauses"
            for v in active
        ]
        blocks.append(mrkdwn("*Active policy*\n" + "\n".join(lines)))
    else:
        blocks.append(mrkdwn("*No policy is loaded yet.* Ask an admin to upload one."))
    if groups is not None:
        asked = sum(g.count for g in groups)
        blocks.append({"type": "divider"})
        blocks.append(
            mrkdwn(f"*Open questions for the policy team*: {len(groups)} groups, {asked} questions")
        )
        room = (MAX_HOME_BLOCKS - len(blocks) - 1) // 2
        for group in groups[:room]:
            blocks.extend(group_blocks(group))
        if len(groups) > room:
            blocks.append(
                context(f"…and {len(groups) - room} more groups: `policybot questions list`.")
            )
        if not groups:
            blocks.append(context("Nothing open. 🎉"))
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def stream_pieces(text: str) -> list[str]:
    """`text` in appends of whole words (MAX_STREAM_PIECE characters or so; a longer run
    without spaces is cut), which put together are `text` again."""
    pieces: list[str] = []
    current = ""
    for word in re.findall(r"\S*\s*", text):
        while len(word) > MAX_STREAM_PIECE:
            pieces.extend([current] if current else [])
            current = ""
            pieces.append(word[:MAX_STREAM_PIECE])
            word = word[MAX_STREAM_PIECE:]
        if current and len(current) + len(word) > MAX_STREAM_PIECE:
            pieces.append(current)
            current = ""
        current += word
    if current:
        pieces.append(current)
    return pieces
