"""Everyday words employees use, mapped to the words policies use for the same things.

Questions say "tweet", "insta" and "my boss"; policies say "post", "social media" and
"manager". The words themselves are data, in `vocabulary.toml` beside this module, read once
at import; this module holds what is done with them. A match on an expansion counts for less
than a match on the word itself (see retrieval.EXPANSION_WEIGHT).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

# The one tokenizer, the index's too: a word here is a word there.
from bot.retrieval.terms import words as words


@dataclass(frozen=True)
class Vocabulary:
    """The word lists as written in the data file, repeats kept, so they can be checked."""

    stopwords: tuple[str, ...]
    expansions: dict[str, tuple[str, ...]]
    topic_synonyms: tuple[tuple[str, ...], ...]
    generic_question_words: tuple[str, ...]
    #: The words that give a sentence its force (permission, duty, negation, condition, …),
    #: by kind, for the groundedness check.
    force: dict[str, tuple[str, ...]]

    def problems(self) -> list[str]:
        """Where the lists contradict each other or repeat themselves, one line each.

        A stopword never reaches retrieval or grouping, so an expansion of it never fires,
        and a generic or synonym entry for it is never read; an expansion target that is a
        stopword matches policy words the question side treats as meaningless. A word that
        `words` would split, or lower-case, never matches anything.
        """
        stop = frozenset(self.stopwords)
        found = []
        listed = [
            ("stopwords", self.stopwords),
            ("generic_question_words", self.generic_question_words),
        ]
        listed += [(f"expansions.{word}", targets) for word, targets in self.expansions.items()]
        listed += [(f"topic_synonyms[{n}]", group) for n, group in enumerate(self.topic_synonyms)]
        listed += [(f"force.{kind}", entries) for kind, entries in self.force.items()]
        for where, entries in listed:
            found += [f"{where}: {w!r} is listed twice" for w in _repeated(entries)]
            found += [
                f"{where}: {w!r} is not one lower-case word" for w in entries if words(w) != [w]
            ]
        every_synonym = [word for group in self.topic_synonyms for word in dict.fromkeys(group)]
        found += [
            f"topic_synonyms: {w!r} is in more than one group"
            for w in _repeated(tuple(every_synonym))
        ]
        for word, targets in self.expansions.items():
            if words(word) != [word]:
                found.append(f"expansions: {word!r} is not one lower-case word")
            if word in stop:
                found.append(f"expansions: {word!r} is a stopword, so its expansion never fires")
            found += [
                f"expansions.{word}: {target!r} is a stopword"
                for target in targets
                if target in stop
            ]
        found += [
            f"generic_question_words: {w!r} is a stopword, so grouping never sees it"
            for w in dict.fromkeys(self.generic_question_words)
            if w in stop
        ]
        found += [
            f"topic_synonyms: {w!r} is a stopword, so grouping never sees it"
            for w in dict.fromkeys(every_synonym)
            if w in stop
        ]
        return found


def _repeated(entries: tuple[str, ...]) -> list[str]:
    return [word for word, count in Counter(entries).items() if count > 1]


def _word_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise ValueError(f"vocabulary: {where} must be a list of words")
    return tuple(value)


def read_vocabulary(text: str) -> Vocabulary:
    """The vocabulary in TOML `text`; a ValueError names the part that has the wrong shape."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"vocabulary: {error}") from error
    expansions = data.get("expansions", {})
    groups = data.get("topic_synonyms", [])
    if not isinstance(expansions, dict):
        raise ValueError("vocabulary: expansions must be a table of word = [words]")
    if not isinstance(groups, list):
        raise ValueError("vocabulary: topic_synonyms must be a list of lists of words")
    force = data.get("force", {})
    if not isinstance(force, dict):
        raise ValueError("vocabulary: force must be a table of kind = [words]")
    return Vocabulary(
        stopwords=_word_list(data.get("stopwords", []), "stopwords"),
        expansions={
            word: _word_list(targets, f"expansions.{word}") for word, targets in expansions.items()
        },
        topic_synonyms=tuple(
            _word_list(group, f"topic_synonyms[{n}]") for n, group in enumerate(groups)
        ),
        generic_question_words=_word_list(
            data.get("generic_question_words", []), "generic_question_words"
        ),
        force={kind: _word_list(entries, f"force.{kind}") for kind, entries in force.items()},
    )


SHIPPED = read_vocabulary(
    resources.files("bot.retrieval").joinpath("vocabulary.toml").read_text(encoding="utf-8")
)

STOPWORDS = frozenset(SHIPPED.stopwords)
#: Each key is an everyday word (as typed, lower case); values are policy-side words.
EXPANSIONS: dict[str, tuple[str, ...]] = SHIPPED.expansions
#: Used to recognise paraphrases of the same question on the policy team's review list.
TOPIC_SYNONYMS: tuple[tuple[str, ...], ...] = SHIPPED.topic_synonyms
#: Words the review list's grouping weighs low however rare they are in the policy.
GENERIC_QUESTION_WORDS = frozenset(SHIPPED.generic_question_words)

# The force of a sentence, for the groundedness check (bot/answering/groundedness.py):
# English's modal and negating words, not any one policy's (the `[force]` table says what each
# kind means).
PERMISSION_WORDS = frozenset(SHIPPED.force["permission"])
PERMISSION_BEFORE_TO = frozenset(SHIPPED.force["permission_before_to"])
DUTY_WORDS = frozenset(SHIPPED.force["duty"])
NEED_WORDS = frozenset(SHIPPED.force["need"])
PROHIBITION_WORDS = frozenset(SHIPPED.force["prohibition"])
NEGATION_WORDS = frozenset(SHIPPED.force["negation"])
CONDITION_WORDS = frozenset(SHIPPED.force["condition"])
CONSENT_WORDS = frozenset(SHIPPED.force["consent"])
UNIVERSAL_WORDS = frozenset(SHIPPED.force["universal"])
REPORTING_WORDS = frozenset(SHIPPED.force["reporting"])


def content_words(text: str) -> list[str]:
    """The words of a question that carry meaning, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and (len(word) > 1 or word == "x") and word not in seen:
            seen[word] = None
    return list(seen)


#: Chat pleasantries around a question: a greeting, an apology for asking, "I was wondering",
#: thanks. They say nothing about the policy, but their words would make a question look
#: longer and better matched, so an uncovered question behind "hi team, sorry to bother you"
#: would pass for a covered one.
_LEADING_PLEASANTRY = re.compile(
    r"""^\s*(?:
        (?:hi|hey|hello|hiya|howdy|yo|greetings|good\s+(?:morning|afternoon|evening)|dear\s+\w+)
            (?:\s+(?:all|everyone|everybody|team|there|folks|guys|y'?all|people|policybot|hr))?
      | (?:sorry|apologies)\s+(?:to\s+bother(?:\s+you)?|for\s+(?:the|a|this)\s+(?:\w+\s+)?question
            |if\s+this\s+is\s+(?:a\s+)?(?:dumb|silly|stupid|obvious|basic)(?:\s+question)?)
      | (?:a\s+)?(?:quick|random|silly|dumb|basic|small|stupid)\s+question(?:\s+for\s+you)?
            (?:\s+here)?
      | i\s+(?:have|had|'ve\s+got|got)\s+a\s+(?:\w+\s+)?question
            (?:\s+about\s+something(?:\s+that\s+came\s+up(?:\s+today|\s+at\s+work)?)?)?
      | (?:i\s+was|i'?m|im|just)\s+wondering(?:\s+(?:if|whether))?
      | hope\s+(?:you'?re|you\s+are|all\s+is|everyone\s+is)\s+(?:well|good|doing\s+well)
    )(?:\s*[,.:;!\-\u2013\u2014]+|\s+but\b|\s*$|\s+)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_TRAILING_THANKS = re.compile(
    r"[\s,.!:;\-]*\b(?:thanks?|thank\s+you|cheers|thx|ty|tia)"
    r"(?:\s+(?:so\s+much|a\s+lot|in\s+advance|all|everyone))*[\s.!]*$",
    re.IGNORECASE,
)


def without_pleasantries(text: str) -> str:
    """The question without the greeting, apology or thanks around it; unchanged when nothing
    with meaning would be left."""
    stripped = text
    for _ in range(6):  # "hi team, sorry to bother you, quick question: ..."
        shorter = _LEADING_PLEASANTRY.sub("", stripped, count=1)
        if shorter == stripped:
            break
        stripped = shorter
    stripped = _TRAILING_THANKS.sub("", stripped)
    return stripped if content_words(stripped) else text
