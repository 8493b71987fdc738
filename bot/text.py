"""A question's text as the core answers, logs and keeps it: encodable, control characters
out, white space folded, and refused when empty or oversized."""

from __future__ import annotations

import re
from dataclasses import replace

from bot import messages
from bot.models import IncomingQuestion, QuestionError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """`text` with every lone surrogate as U+FFFD, and a surrogate pair as the character it
    encodes. Slack's and Teams' JSON may carry "\\ud800", which Python decodes to a str that
    SQLite and UTF-8 files refuse; nothing else a str can hold is refused by either."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_text(text: str) -> str:
    """Control characters out, white space folded, lone surrogates replaced: a question as it
    is answered and logged."""
    return " ".join(_CONTROL.sub(" ", encodable(text or "")).split())


def storable(incoming: IncomingQuestion) -> IncomingQuestion:
    """The question with every field the log and the spool keep made encodable."""
    fields = (
        incoming.text,
        incoming.asker,
        incoming.conversation,
        incoming.asker_name,
        incoming.conversation_key,
    )
    if not any(_SURROGATE.search(value) for value in fields):
        return incoming
    return replace(
        incoming,
        text=encodable(incoming.text),
        asker=encodable(incoming.asker),
        conversation=encodable(incoming.conversation),
        asker_name=encodable(incoming.asker_name),
        conversation_key=encodable(incoming.conversation_key),
    )


def normalize_question(text: str, max_chars: int) -> str:
    """`clean_text`, refusing empty or oversized questions."""
    cleaned = clean_text(text)
    if not cleaned:
        raise QuestionError(messages.EMPTY_QUESTION)
    if len(cleaned) > max_chars:
        raise QuestionError(messages.question_too_long(len(cleaned), max_chars))
    return cleaned
