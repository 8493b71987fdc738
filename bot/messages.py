"""Every user-facing text of the core, once, in platform-neutral words.

Platforms render these (Block Kit, an Adaptive Card, a terminal line) but do not word them:
the same event reads the same on Slack, Teams, the console and over HTTP. Texts that quote a
value are functions; the rest are constants. Markup is limited to `backticks` for a command,
which every platform shows as code or leaves readable.
"""

from __future__ import annotations

from collections.abc import Sequence

# -- asking -------------------------------------------------------------------------------------
#: No example here: it is said before any policy is read, and must fit every organization's.
EMPTY_QUESTION = "Please type a question about the policy."


def question_too_long(length: int, max_chars: int) -> str:
    return (
        f"That question is {length:,} characters long; please keep it under "
        f"{max_chars:,} and ask about one thing at a time."
    )


#: Whatever failed while answering (not the question's own problem): the one apology.
APOLOGY = "Sorry, something went wrong while answering. Please try again in a moment."
#: The placeholder shown while a slow answer is worked out.
THINKING = "Thinking… I'm looking this up in the policy."
#: How an answer sent late (after a restart) begins.
LATE = "Sorry for the delay"

# -- checking a draft post ----------------------------------------------------------------------
EMPTY_DRAFT = "There is no text to check: the message is empty."


def draft_too_long(length: int, max_chars: int) -> str:
    return f"That text is {length:,} characters long; I can check up to {max_chars:,}."


# -- an answer's buttons ------------------------------------------------------------------------
#: What the asker is told after each reaction (bot.core.REACTIONS), on every platform.
REACTION_NOTES = {
    "helpful": "Thanks for the feedback!",
    "not_helpful": "Thanks. I've put your question on the policy team's review list.",
    "ask_policy_team": "Sent to the policy team. They'll follow up with you.",
}
#: A button under an answer whose question is no longer in the log (purged), or garbled.
STALE_QUESTION = "I couldn't find that question any more. Please ask it again."
#: The console's reactions before any question.
ASK_FIRST = "Ask a question first."
#: A rating pressed under "the policy does not cover this": there was no answer to rate, and
#: the question is on the review list already. (An uncertain answer can be rated: its closest
#: clauses may be the right ones.)
NOTHING_TO_RATE = (
    "There was no answer to rate: the policy doesn't cover that question, so it is already on "
    "the policy team's review list."
)
#: The same reaction again on the same answer: noted once, not put on the list twice.
ALREADY_NOTED = {
    "helpful": "You already said this answer was helpful; it's noted.",
    "not_helpful": "You already said this answer wasn't helpful; it's on the review list.",
    "ask_policy_team": "That question is already with the policy team.",
}


def counted(count: int, noun: str, plural: str = "") -> str:
    """ "1 question", "3 questions": a count with its noun in the right number (`plural` when
    it is not the noun and an s)."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {plural or noun + 's'}"


# -- policy uploads -----------------------------------------------------------------------------
ADMIN_ONLY = (
    "Sorry, only policy admins can upload or change the policy. If you think you should be "
    "one, ask whoever runs policybot to add you to POLICYBOT_ADMINS."
)
#: Said after every refused upload: the uploader's worry is what happened to the policy.
NOTHING_CHANGED = "Nothing was changed; the active policy is as it was."
STALE_VERSION = "That button no longer matches a policy version; upload the file again."
NO_FILENAME = "The upload has no file name; the name tells its format."


def too_large(name: str, limit_bytes: int) -> str:
    """What an uploader is told when a file is over the size limit, wherever it was refused."""
    return f"{name} is larger than the {limit_bytes / 2**20:g} MB upload limit."


def could_not_download(name: str, reason: str) -> str:
    return f"I could not download {name}: {reason}."


def upload_refused(reason: str) -> str:
    """A refused upload as the uploader reads it: why, then that nothing changed."""
    reason = reason.strip()
    if reason.endswith(NOTHING_CHANGED):
        return reason
    return f"{reason} {NOTHING_CHANGED}"


def discarded(display: str) -> str:
    return f"Discarded {display}; the active policy is unchanged."


def example_retired(versions: list[tuple[str, str]]) -> str:
    """The first real policy activated: the bundled example it replaced, and how to undo."""
    names = ", ".join(display for display, _ in versions)
    again = " or ".join(f"`policybot policy activate {reference}`" for _, reference in versions)
    return (
        f"The bundled example policy ({names}) is retired: answers now come from your policy "
        f"alone. To answer from both, {again}."
    )


def example_will_be_retired(displays: list[str]) -> str:
    return (
        f"Activating it retires the bundled example policy ({', '.join(displays)}), so answers "
        "come from this policy alone."
    )


def document_retired(display: str, reference: str) -> str:
    return (
        f"Retired {display}: its document no longer answers questions. To bring it back, "
        f"`policybot policy activate {reference}` (or any of its versions)."
    )


def already_retired(document: str) -> str:
    return f"{document} has no active version; nothing changed."


def rollback_retired(document: str) -> str:
    return (
        f"{document} is retired (no version is active), so there is nothing to roll back; "
        "activate one of its versions to bring it back (`policybot policy history` lists them)."
    )


def duplicate_document(filename: str, display: str, status: str, document: str) -> str:
    """The same bytes uploaded under another name: which document it copies."""
    return (
        f"{filename} has the same content as {display} ({status}), of the document "
        f"{document}; it was not stored as a second document, which would quote every clause "
        f"twice. To load it as a version of {document}, give that name "
        f"(`policybot policy load FILE --name {document}`, or the `name` field over HTTP)."
    )


def not_a_version_action(action: str) -> str:
    return f"{action!r} is not something a policy version can be."


def policy_team(teams: list[str]) -> str:
    """ "the policy team (HR, PR and Legal)": who reviews a question, by the owners the active
    policy names (none: "the policy team")."""
    if not teams:
        return "the policy team"
    if len(teams) == 1:
        return f"the policy team ({teams[0]})"
    return f"the policy team ({', '.join(teams[:-1])} and {teams[-1]})"


def answered(where: str, others: str) -> str:
    """The lead of a confident extractive answer: `where` names the first clause's section
    ("section 4.2 Confidential information"), `others` the other sections cited ("" if none)."""
    also = f" (see also {others})" if others else ""
    return f"The policy addresses this in {where}{also}. Here is what it says:"


def uncertain(where: str, others: str, teams: list[str]) -> str:
    """The lead of an uncertain answer: the closest clauses, said plainly to be possibly not
    what was asked, and that the question is with the policy team already."""
    also = f" (see also {others})" if others else ""
    return (
        f"I'm not sure the policy answers this. The closest it comes is {where}{also}, quoted "
        f"below; it may not be what you asked. I've passed your question to "
        f"{policy_team(teams)}, who review what the policy leaves open."
    )


#: How an uncertain answer is marked where it is shown beside a confident one (a Slack context
#: line, a Teams card's heading, a notification's first words), and what the mark means.
#: How much of the understood question an answer repeats before it.
TAKEN_AS_CHARS = 300


def taking_as(standalone: str) -> str:
    """What an answer to a follow-up says first: the question it answers."""
    text = " ".join(standalone.split())
    if len(text) > TAKEN_AS_CHARS:
        text = "…" + text[-(TAKEN_AS_CHARS - 1) :].lstrip()
    return f"Taking this as: {text}"


def follow_up_label(asked: str, standalone: str) -> str:
    """A follow-up on the review list: what was asked, and the question it was taken as."""
    return f"{asked} (taken as: {standalone})"


UNCERTAIN_MARK = "Possibly not what you asked"
UNCERTAIN_NOTE = "These are the policy's closest clauses; your question is with the policy team."


def not_covered(teams: list[str]) -> str:
    """The reply when the policy does not cover a question; `teams`: the owners the active
    policy names (none: "the policy team")."""
    return (
        "The policy does not cover this, so I can't answer it from the policy. "
        f"I've logged your question for {policy_team(teams)}, who review what the policy "
        "leaves open."
    )


def example_question(section_title: str) -> str:
    """A question to show as an example, about a section of the active policy."""
    topic = section_title.strip().rstrip(":").strip() or "posting on social media"
    return f"what does the policy say about {topic[:1].lower() + topic[1:]}?"


def greeting(policy_titles: list[str]) -> str:
    """What an employee opening a chat with the bot is told first: which policy it answers
    from (`policy_titles`: the active documents' titles; none loaded yet: said so)."""
    if not policy_titles:
        return "Hi! No policy is loaded yet, so I can't answer from one; ask an admin to upload it."
    names = ", ".join(policy_titles[:3]) + (" and others" if len(policy_titles) > 3 else "")
    return f"Hi! Ask me whether you may post something; I answer from {names}, quoting it."


#: The status an agent thread shows while an answer is being prepared.
LOOKING = "Looking in the policy…"
#: Opens an answer that replaces the draft summary the asker watched being written (streamed)
#: when the finished draft failed the check against the clauses, or could not be finished.
DRAFT_REPLACED = (
    "The draft you saw while I was writing is withdrawn: it did not pass my check against "
    "the policy. This answer replaces it."
)


# -- the review list ----------------------------------------------------------------------------
#: Someone not on the policy team asked for the review list.
NOT_POLICY_TEAM = (
    "Sorry, the review list is for the policy team. If you think you should have it, ask "
    "whoever runs policybot to add you to the policy team."
)
#: Someone not on the policy team pressed Answer or Dismiss.
NOT_POLICY_TEAM_ACTION = (
    "Sorry, only members of the policy team can answer or dismiss questions on the review "
    "list. Nothing was changed."
)
#: The review list asked for where others would see it.
REVIEW_IN_PRIVATE = "The review list is for the policy team's eyes only; ask me in a private chat."
#: An Answer / Dismiss button (or form) that no longer names a group.
STALE_GROUP = "That button no longer points at a question group; open the review list again."
EMPTY_ANSWER = "The answer is empty; write what askers should be told."
#: Delivery not finished when a group was answered: the bot keeps trying.
RETRIED = "Pending answers are retried while the bot runs."


def no_such_group(group_id: int) -> str:
    return f"There is no question group {group_id}."


def answer_too_long(length: int, max_chars: int) -> str:
    return (
        f"The answer is {length:,} characters long; keep it under "
        f"{max_chars:,} and link to longer guidance."
    )


def group_answered(group_id: int, count: int, delivery: str, pending: int) -> str:
    """The reviewer's confirmation; `delivery` is DeliveryReport.describe()."""
    text = (
        f"Group #{group_id} answered ({count} asked); similar questions now get this answer. "
        f"Askers: {delivery}."
    )
    return f"{text} {RETRIED}" if pending else text


def group_dismissed(group_id: int, count: int) -> str:
    return f"Group #{group_id} dismissed ({count} asked); nobody is notified."


def reviewed_answer_to_asker(question: str, answer: str, answered_at: str) -> str:
    """A reviewed answer as sent to someone who asked in the group."""
    return (
        f"You asked: “{question}”\n"
        f"The policy team has answered it (reviewed answer, {answered_at[:10]}):\n\n{answer}"
    )


def reviewed_lead(answer: str, answered_at: str) -> str:
    """The lead of an answer given from a group the policy team answered."""
    return f"The policy team has answered this (reviewed answer, {answered_at[:10]}):\n\n{answer}"


def unreadable_age(text: str) -> str:
    return f"Cannot read the age {text!r}; write it like 180d, 26w or 12h."


def unreadable_filter_date(name: str, text: str) -> str:
    return f"Cannot read the {name} date {text[:40]!r}; write it as YYYY-MM-DD."


def filter_dates_reversed(since: str, until: str) -> str:
    return f"The from date ({since}) is after the to date ({until}); swap them."


def unknown_group_status(status: str, statuses: Sequence[str]) -> str:
    return f"There is no group status {status[:40]!r}; choose {', '.join(statuses)} or all."


#: Someone on neither the policy team nor the admins opening the policy pages.
NOT_POLICY_READER = (
    "Sorry, the policy versions are for the policy team and policy admins. If you think you "
    "should have them, ask whoever runs policybot to add you."
)


def age_not_positive(text: str) -> str:
    return f"The age must be more than zero, got {text!r}."


# -- the console (`policybot chat`) ---------------------------------------------------------------
def console_help(example: str) -> str:
    """The console's help; `example` a question about the active policy
    (`PolicyBot.example_question`)."""
    return CONSOLE_HELP.replace("{example}", example)


CONSOLE_HELP = """Ask a question about the policy, for example:
  {example}
Commands: !helpful, !unhelpful (the last answer), !human (send the last question to the
policy team), !policy (which policy is active), !help, !quit (or Ctrl-D)."""
CONSOLE_FOOTER = (
    "Was this helpful? Type !helpful or !unhelpful; !human sends it to the policy team."
)
#: Under an uncertain answer: the question is with the policy team already, but whether the
#: closest clauses were the right ones is still worth knowing.
CONSOLE_FOOTER_UNCERTAIN = (
    "The policy team has your question. Were these the right clauses? Type !helpful or !unhelpful."
)


def unknown_command(text: str) -> str:
    return f"I don't know the command {text.split()[0]}."


def listening_on(host: str, port: int) -> str:
    """`policybot serve`'s line once its port is bound."""
    shown = f"[{host}]" if ":" in host else host
    everywhere = " (all interfaces)" if host in {"0.0.0.0", "::", ""} else ""
    return f"policybot: listening on http://{shown}:{port}{everywhere}"


#: The console's own, shorter confirmations (a terminal is not a chat with buttons).
CONSOLE_NOTES = {
    "helpful": "Thanks, noted.",
    "not_helpful": "Thanks, noted.",
    "ask_policy_team": "Sent to the policy team; they will follow up.",
}

# -- policy administration over HTTP (/admin/policies) -------------------------------------------
HTTP_ADMIN_DISABLED = (
    "Policy administration over HTTP is disabled. Set POLICYBOT_ADMIN_TOKEN to a long random "
    "secret and send it as 'Authorization: Bearer <token>'."
)
HTTP_TOKEN_REQUIRED = "A valid admin token is required: 'Authorization: Bearer <token>'."
HTTP_MALFORMED_FORM = (
    "The upload is not a well-formed multipart/form-data body: a boundary, a part's headers "
    "(a file name with a control character such as NUL is refused there) or a field's encoding "
    "is broken. Rename the file if need be and send it as `curl -F file=@policy.docx` does."
)
HTTP_NO_FILE_FIELD = "Send the policy file in a form field named 'file'."
HTTP_NO_FILENAME = "Give the file name with ?filename=policy.docx (it tells the format)."


def http_over_limit(what: str, limit_bytes: int) -> str:
    return f"{what} is larger than the {limit_bytes / 2**20:g} MB limit."


def rechecking_in_background(count: int) -> str:
    return (
        f"Re-checking {count} open unanswered question(s) against it in the background; "
        "you will be told what it now answers."
    )


def now_answered_by_section(count: int, reference: str) -> str:
    """One line of an activation's re-check results."""
    if not reference:
        where = "a clause no longer stored"
    else:
        where = f"§{reference}" if reference[:1].isdigit() else reference
    return f"{counted(count, 'open question')} now answered by {where}"


def rechecked(done: int, total: int, now_answered: int) -> str:
    return (
        f"Re-checked {done} of {total} open unanswered question(s): {now_answered} now "
        "answered by the policy."
    )


# -- trends (the console's trend pages) ---------------------------------------------------------
def trends_unreadable_date(which: str, text: str) -> str:
    return f"Cannot read the {which} date {text[:40]!r}; write it like 2026-03-31."


def trends_range_reversed(first: str, last: str) -> str:
    return f"The range starts ({first}) after it ends ({last}); swap the two dates."


def trends_range_too_long(max_weeks: int) -> str:
    return f"Choose a range of at most {max_weeks} weeks."


#: Under a Teams digest whose chart would make the card larger than Teams takes.
DIGEST_CHART_TOO_LARGE = (
    "The weekly chart did not fit in this card; the console's trends page shows it."
)
