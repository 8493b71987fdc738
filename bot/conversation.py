"""Conversations that continue: a follow-up ("what about LinkedIn?", "and if it's a private
account?") understood with the asker's own turns before it in the same conversation (a Slack
thread, a Teams reply chain or personal chat, a console session), read from the question log.

The one place that decides what retrieval sees:

- with an LLM configured, `Condenser` asks it once to rewrite the conversation as one
  standalone question; if that fails, the rule below decides;
- without one, `FollowUpRule` retrieves for the follow-up alone and for it combined with the
  question understood before it, and takes the combination when the follow-up reads as one
  (short, or opening or ending as a continuation does, or pointing back with a pronoun) and
  alone it is not confident. Its two constants are fitted on the tuning policies of
  eval/multiturn by `python -m bench multiturn`, which reports them on the held-out ones.

A question that stands on its own (a new topic in the same thread) is retrieved alone, so it
is not dragged back to the old one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.answering.llm import ChatClient, LLMError
from bot.models import Retrieval
from bot.retrieval.vocabulary import content_words

log = logging.getLogger(__name__)

#: How a question was understood.
FIRST = "first"  # nothing before it in its conversation
ALONE = "alone"  # it had turns before it, but stands on its own
COMBINED = "combined"  # the rule joined it to the question before it
CONDENSED = "condensed"  # the LLM rewrote the conversation as one question

#: What joins the earlier question and the follow-up in a combined question: also how the
#: asker and the log read it.
JOINER = " — "
#: Turns of a conversation read from the log before a question, newest last.
TURNS_READ = 3
#: A combined or condensed question longer than this keeps its newest part: the follow-up
#: and what it continues.
MAX_STANDALONE_CHARS = 1000

#: A question that opens as a continuation does: a connective ("and", "but", "so", "or",
#: "also", "then", "plus") or "what/how about", "what if", "same for".
_CONTINUING_OPENING = re.compile(
    r"^\W*(?:and|but|so|or|also|then|plus|(?:what|how)\s+about|what\s+if|same\s+(?:for|with))\b",
    re.IGNORECASE,
)
#: A question that ends as an addition to the one before does ("... too?", "... as well?").
_ADDITIVE_ENDING = re.compile(r"\b(?:too|also|as\s+well|either|instead)\W*$", re.IGNORECASE)
#: Words that point back to something said before (English anaphora).
_POINTING_BACK = frozenset(
    {"it", "that", "this", "those", "these", "they", "them", "their", "there", "same", "such"}
)


@dataclass(frozen=True)
class Turn:
    """An earlier question of the conversation: as asked, and as retrieval saw it."""

    asked: str
    standalone: str = ""  # "" when retrieval saw it as asked

    @property
    def understood(self) -> str:
        return self.standalone or self.asked


@dataclass(frozen=True)
class Reading:
    """What retrieval saw for a question, and how that came about."""

    standalone: str
    how: str  # FIRST, ALONE, COMBINED or CONDENSED
    #: Why the LLM's rewrite was not used ("" when it was, or was not asked).
    fallback: str = ""

    @property
    def continued(self) -> bool:
        return self.how in (COMBINED, CONDENSED)


@dataclass(frozen=True)
class Signals:
    """What in a question's own words says it continues the one before."""

    content_words: int
    continuing: bool  # opens or ends as a continuation
    pointing_back: bool

    @classmethod
    def of(cls, question: str) -> Signals:
        words = re.findall(r"[a-z']+", question.lower())
        return cls(
            content_words=len(content_words(question)),
            continuing=bool(
                _CONTINUING_OPENING.search(question) or _ADDITIVE_ENDING.search(question)
            ),
            pointing_back=any(w in _POINTING_BACK for w in words),
        )


def combined(question: str, before: Turn) -> str:
    """The follow-up after the question it continues, as one question."""
    text = f"{before.understood}{JOINER}{question}"
    return text[-MAX_STANDALONE_CHARS:] if len(text) > MAX_STANDALONE_CHARS else text


@dataclass(frozen=True)
class FollowUpRule:
    """Whether a question continues the one before, from its signals and its confidence alone.

    Fitted on the tuning policies of eval/multiturn (`python -m bench multiturn`): a question
    with at most `short_words` content words (or, with `cues`, a continuation's opening or
    ending or a word pointing back) is combined unless alone it is at least
    `alone_confident`. On the tuning policies the cues dragged more topic switches back than
    they brought follow-ups in, so the fitted rule goes by shortness alone."""

    short_words: int = 2
    alone_confident: float = 1.0
    cues: bool = False

    def reads_as_follow_up(self, signals: Signals) -> bool:
        if signals.content_words <= self.short_words:
            return True
        return self.cues and (signals.continuing or signals.pointing_back)

    def resolve(
        self,
        question: str,
        turns: Sequence[Turn],
        retrieve: Callable[[str], Retrieval],
        condensed: str | None = None,
    ) -> tuple[Reading, Retrieval]:
        """What retrieval sees for `question` after `turns` (oldest first), and its retrieval.
        `condensed`: the LLM's standalone question, used whenever there is one."""
        if not turns:
            return Reading(question, FIRST), retrieve(question)
        if condensed:
            if condensed.strip().lower() == question.strip().lower():
                return Reading(question, ALONE), retrieve(question)
            return Reading(condensed, CONDENSED), retrieve(condensed)
        alone = retrieve(question)
        if not self.reads_as_follow_up(Signals.of(question)):
            return Reading(question, ALONE), alone
        if alone.confidence >= self.alone_confident:
            return Reading(question, ALONE), alone
        joined = combined(question, turns[-1])
        return Reading(joined, COMBINED), retrieve(joined)


#: What the LLM is asked; the conversation goes in the user message as JSON, so nothing an
#: asker wrote is read as an instruction of ours.
CONDENSE_PROMPT = (
    "You rewrite the last question of a workplace chat about an organization's social media "
    "policy as one standalone question, for searching the policy. If the last question "
    "continues the earlier ones (it leaves out what it is about, or says 'what about', "
    "'and if', 'too'), fill in what it leaves out from them. If it starts a new topic, "
    "return it unchanged. Never answer it. Reply with JSON only: "
    '{"standalone": "<the question>"}'
)


class Condenser:
    """One LLM call that rewrites a follow-up as a standalone question; None when it fails."""

    def __init__(self, client: ChatClient, budget: float = 6.0) -> None:
        self.client = client
        self.budget = budget

    @staticmethod
    def messages(question: str, turns: Sequence[Turn]) -> list[dict[str, str]]:
        conversation = {"earlier": [t.asked for t in turns], "last": question}
        return [
            {"role": "system", "content": CONDENSE_PROMPT},
            {"role": "user", "content": json.dumps(conversation, ensure_ascii=False)},
        ]

    async def condense(self, question: str, turns: Sequence[Turn]) -> tuple[str | None, str]:
        """(the standalone question, "") or (None, why not) for the rule to decide instead."""
        try:
            completion = await self.client.complete(
                self.messages(question, turns), budget=self.budget
            )
        except LLMError as error:
            return None, error.reason
        except Exception as error:  # any failure here leaves the question to the rule
            log.exception("unexpected error condensing a follow-up")
            return None, f"unexpected error: {type(error).__name__}"
        try:
            reply = json.loads(completion.content)
            standalone = reply["standalone"] if isinstance(reply, dict) else None
        except ValueError:
            return None, "the condensed question was not JSON"
        except KeyError:
            return None, "the condensed question was missing"
        if not isinstance(standalone, str) or not standalone.strip():
            return None, "the condensed question was empty"
        standalone = " ".join(standalone.split())
        if len(standalone) > MAX_STANDALONE_CHARS:
            return None, "the condensed question was too long"
        return standalone, ""
