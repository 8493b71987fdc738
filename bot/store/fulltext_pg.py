"""Clause search on PostgreSQL, ranked as SQLite's FTS5 ranks it.

The GIN index over `clauses.terms` (m009) finds the candidates: clauses of the given versions
holding any of the query's stems. They are then scored here with FTS5's own `bm25()` formula,
over the same counts FTS5 keeps (rows and stems in the whole index, the clauses holding each
stem, each clause's stems per column, its length), so both engines rank the same candidates
the same way; ts_rank_cd, PostgreSQL's ranking, weighs proximity and length otherwise.

A query is what `LexicalRetriever` sends: stems as FTS5 phrases joined by OR. Anything else
finds nothing, as a query FTS5 cannot parse finds nothing on SQLite.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence

from bot.store.connection import Database

#: FTS5's bm25() constants (SQLite's fts5_aux.c).
K1, B = 1.2, 0.75
#: FTS5's floor for a stem in more than half the rows, whose IDF would be negative.
MIN_IDF = 1e-6
_PHRASE = re.compile(r'\s*"((?:[^"]|"")*)"\s*')
_OR = re.compile(r"\s*OR\s*")


def phrases(match: str) -> list[str]:
    """The stems of an FTS5 query `"a" OR "b"`; [] for any other query."""
    found: list[str] = []
    position = 0
    while position < len(match):
        if found:
            separator = _OR.match(match, position)
            if separator is None or separator.end() == position:
                return []
            position = separator.end()
        phrase = _PHRASE.match(match, position)
        if phrase is None:
            return []
        term = phrase.group(1).replace('""', '"')
        if not term or " " in term:
            return []  # a phrase of several words is not what the retriever sends
        found.append(term)
        position = phrase.end()
    return found


def _tsquery(terms: Sequence[str]) -> str:
    # Cast with ::tsquery, not to_tsquery: a quoted lexeme is then taken exactly as written.
    return " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms)


#: Clauses whose stem counts one `ClauseTerms` keeps (a few KB each).
KEPT_CLAUSES = 2048


class ClauseTerms:
    """Each clause's stems counted per column (text, section title, headings), kept by
    clause id, most recently used last: a stored clause's stems never change and its id is
    never given again (an identity column), so a replica reads and counts them once, not
    for every question that finds the clause."""

    def __init__(self, size: int = KEPT_CLAUSES) -> None:
        self.size = size
        self._kept: OrderedDict[int, dict[str, tuple[int, int, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, clause_id: int) -> dict[str, tuple[int, int, int]] | None:
        with self._lock:
            found = self._kept.get(clause_id)
            if found is not None:
                self._kept.move_to_end(clause_id)
            return found

    def keep(
        self, clause_id: int, columns: Sequence[str | None]
    ) -> dict[str, tuple[int, int, int]]:
        text, title, headings = (Counter((column or "").split()) for column in columns)
        counted = {
            stem: (text[stem], title[stem], headings[stem]) for stem in {*text, *title, *headings}
        }
        with self._lock:
            self._kept[clause_id] = counted
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return counted


def search(
    db: Database,
    match: str,
    version_ids: Sequence[int],
    limit: int,
    weights: tuple[float, float, float],
    kept: ClauseTerms | None = None,
) -> list[tuple[int, float]]:
    """(clause id, score), best first, as `PolicyStore.search_clauses` on SQLite. `kept`:
    the clauses' stem counts this connection has read before."""
    terms = list(dict.fromkeys(phrases(match)))
    if not terms:
        return []
    kept = kept if kept is not None else ClauseTerms()
    marks = ",".join("?" * len(version_ids))
    # One statement, one round trip: the index's counts and the clauses holding each stem are
    # uncorrelated subqueries, worked out once beside the candidates (and not at all when
    # there is none). Three round trips per question were a third of a replica's statements.
    candidates = db.execute(
        "SELECT (SELECT count(*) FROM clauses), "
        "(SELECT coalesce(sum(term_count), 0) FROM clauses), "
        "(SELECT array_agg((SELECT count(*) FROM clauses WHERE terms @@ q::tsquery) ORDER BY n) "
        "FROM unnest(string_to_array(?, ' ')) WITH ORDINALITY AS stems(q, n)), "
        "id, term_count FROM clauses "
        f"WHERE terms @@ ?::tsquery AND version_id IN ({marks})",
        # The stems' queries as one text, split by PostgreSQL: no stem holds a space (see
        # `phrases`), and psycopg's dumping of a list parameter was a fifth of the worker's
        # CPU per question.
        [" ".join(_tsquery([term]) for term in terms), _tsquery(terms), *version_ids],
    ).fetchall()
    if not candidates:
        return []
    rows_total, tokens_total, per_stem = candidates[0][:3]
    counted = {int(row[3]): kept.get(int(row[3])) for row in candidates}
    missing = [clause_id for clause_id, found in counted.items() if found is None]
    if missing:
        for clause_id, *columns in db.execute(
            "SELECT id, text_terms, section_title_terms, headings_terms FROM clauses "
            "WHERE id = ANY(?)",
            [missing],
        ).fetchall():
            counted[int(clause_id)] = kept.keep(int(clause_id), columns)
    average_length = float(tokens_total) / float(rows_total) or 1.0
    holding = {term: int(count) for term, count in zip(terms, per_stem, strict=True)}
    idf = {}
    for term, count in holding.items():
        value = math.log((rows_total - count + 0.5) / (count + 0.5))
        idf[term] = value if value > 0 else MIN_IDF
    w_text, w_title, w_headings = weights
    scored = []
    for *_, clause_id, length in candidates:
        stems = counted.get(int(clause_id)) or {}
        norm = K1 * (1 - B + B * float(length or 0) / average_length)
        score = 0.0
        for term in terms:
            in_text, in_title, in_headings = stems.get(term, (0, 0, 0))
            frequency = w_text * in_text + w_title * in_title + w_headings * in_headings
            score += idf[term] * frequency * (K1 + 1) / (frequency + norm)
        scored.append((int(clause_id), score))
    scored.sort(key=lambda hit: (-hit[1], hit[0]))
    return scored[:limit]
