"""The one tokenizer: how text becomes words and stems, for the index and for questions alike.

The FTS5 index stores clause text already split and stemmed here (`indexed`), under FTS5's
`ascii` tokenizer, and questions are searched with stems made here: so a word of the policy is
always found through itself. `ascii` only splits at ASCII punctuation and space and lower-cases
ASCII capitals, which our terms never contain, so it passes every term through unchanged;
`unicode61` would apply SQLite's own Unicode case and diacritic tables (of another Unicode
version than Python's) and could split or fold a term a second time.

Any change to what `words` or `stem` return changes what is indexed: the stored index must
then be rebuilt by a new migration (see `bot.store.schema`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

#: The FTS5 tokenizer the index is declared with (see the module's docstring for why).
FTS_TOKENIZER = "ascii"

_stemmer = snowballstemmer.stemmer("porter")

#: Typographic apostrophes and primes people type for "'" (phones turn "'" into "’").
_APOSTROPHES = str.maketrans(dict.fromkeys("’‘ʼ′`", "'"))
#: English's irregular negative contractions, read before the regular "n't" -> " not".
_IRREGULAR_NEGATIONS = re.compile(r"\b(?:(ca)|(wo)|(sha))n't\b")
_NEGATION = re.compile(r"n't\b")
#: A possessive ("employee's", "employees'") is the word itself.
_POSSESSIVE = re.compile(r"(?<=\w)'s?(?!\w)")
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def _irregular(match: re.Match[str]) -> str:
    ca, wo, _sha = match.groups()
    return "can not" if ca else "will not" if wo else "shall not"


def folded(text: str) -> str:
    """Lower case, typographic apostrophes as "'", compatibility forms unified ("ﬁ" -> fi,
    full-width digits -> digits, "ß" -> ss) and diacritics dropped ("café" -> cafe), so a word
    matches however it was typed."""
    text = text.translate(_APOSTROPHES).lower()
    if text.isascii():
        return text
    # Decomposing can bring capitals back ("㎸" -> kV), and case folding marks ("İ" -> i̇).
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=4096)
def _in_word(character: str) -> bool:
    # A letter, a digit, or a mark that is part of its letter (Devanagari's vowel signs): a
    # regular expression's word class would split "हिन्दी" at each of those.
    return character.isalnum() or unicodedata.category(character)[0] == "M"


def _split(text: str) -> list[str]:
    if text.isascii():
        return _ASCII_WORD.findall(text)
    found: list[str] = []
    current: list[str] = []
    for character in text:
        if _in_word(character):
            current.append(character)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def words(text: str) -> list[str]:
    """The words of a text: folded, "n't" read as "not", possessives dropped; hyphens and other
    apostrophes split words ("e-mail" -> e, mail; "you're" -> you, re); any script's letters,
    digits and marks make words, everything else separates them."""
    text = _IRREGULAR_NEGATIONS.sub(_irregular, folded(text))
    return _split(_POSSESSIVE.sub("", _NEGATION.sub(" not", text)))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    # Porter takes "s" (of "U.S.") to nothing, which no index can hold.
    return str(_stemmer.stemWord(word)) or word


def stems(text: str) -> list[str]:
    """The stem of every word of a text, in order, repeats kept (what the index counts)."""
    return [stem(word) for word in words(text)]


def indexed(text: str) -> str:
    """A text as the FTS5 index stores it: its stems, separated by spaces."""
    return " ".join(stems(text))


def fts_phrase(term: str) -> str:
    """A stem as an FTS5 query phrase."""
    return '"' + term.replace('"', '""') + '"'
