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
from collections import Counter
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


def search(
    db: Database,
    match: str,
    version_ids: Sequence[int],
    limit: int,
    weights: tuple[float, float, float],
) -> list[tuple[int, float]]:
    """(clause id, score), best first, as `PolicyStore.search_clauses` on SQLite."""
    terms = list(dict.fromkeys(phrases(match)))
    if not terms:
        return []
    marks = ",".join("?" * len(version_ids))
    # One statement, one round trip: the index's counts and the clauses holding each stem are
    # uncorrelated subqueries, worked out once beside the candidates (and not at all when
    # there is none). Three round trips per question were a third of a replica's statements.
    candidates = db.execute(
        "SELECT (SELECT count(*) FROM clauses), "
        "(SELECT coalesce(sum(term_count), 0) FROM clauses), "
        "(SELECT array_agg((SELECT count(*) FROM clauses WHERE terms @@ q::tsquery) ORDER BY n) "
        "FROM unnest(?::text[]) WITH ORDINALITY AS stems(q, n)), "
        "id, text_terms, section_title_terms, headings_terms, term_count FROM clauses "
        f"WHERE terms @@ ?::tsquery AND version_id IN ({marks})",
        [[_tsquery([term]) for term in terms], _tsquery(terms), *version_ids],
    ).fetchall()
    if not candidates:
        return []
    rows_total, tokens_total, per_stem = candidates[0][:3]
    average_length = float(tokens_total) / float(rows_total) or 1.0
    holding = {term: int(count) for term, count in zip(terms, per_stem, strict=True)}
    idf = {}
    for term, count in holding.items():
        value = math.log((rows_total - count + 0.5) / (count + 0.5))
        idf[term] = value if value > 0 else MIN_IDF
    scored = []
    for _, _, _, clause_id, *columns, length in candidates:
        counts = [Counter((column or "").split()) for column in columns]
        norm = K1 * (1 - B + B * float(length or 0) / average_length)
        score = 0.0
        for term in terms:
            frequency = sum(w * c[term] for w, c in zip(weights, counts, strict=True))
            score += idf[term] * frequency * (K1 + 1) / (frequency + norm)
        scored.append((int(clause_id), score))
    scored.sort(key=lambda hit: (-hit[1], hit[0]))
    return scored[:limit]
