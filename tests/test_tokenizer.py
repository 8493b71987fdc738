"""One tokenizer for the index and for questions: every word of a policy is found through
itself, the index holds a stem exactly where the Python side sees it, and a database indexed
the old way (FTS5's porter over raw text) is rebuilt on open."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlite_utils

from bench.sets import SHARED_POLICIES
from bot.models import Clause, ParsedPolicy, StoredClause
from bot.policies import PolicyLibrary
from bot.reading.ingest import read_policy
from bot.retrieval.lexical import LexicalRetriever, stem
from bot.retrieval.terms import fts_phrase, stems
from bot.retrieval.vocabulary import EXPANSIONS, content_words, words
from bot.store.database import Storage, migrations
from tests.conftest import BUNDLED_POLICY
from tests.reliability import record

SHARED_POLICY_FILES = (
    sorted(p for p in SHARED_POLICIES.glob("*.md") if not p.name.startswith("LICENSE"))
    if SHARED_POLICIES.is_dir()
    else []
)
POLICY_FILES = [BUNDLED_POLICY, *SHARED_POLICY_FILES]
#: How many clauses a one-word question is answered from, as a user is shown them.
SHOWN = 5
REACHABLE_CHECK = "Retrieval: every word of a policy, asked alone, finds a clause holding it"
REACHABLE_COMMAND = "pytest tests/test_tokenizer.py -k every_word"


@dataclass
class LoadedPolicy:
    storage: Storage
    version: int
    clauses: list[StoredClause]


def load(path: Path) -> LoadedPolicy:
    storage = Storage.memory()
    version = PolicyLibrary(storage).load_file(path).version.id
    return LoadedPolicy(storage, version, storage.clauses([version]))


def searched_words(stored: StoredClause) -> list[str]:
    """The words of a clause as the index holds them: its text, section title and headings."""
    clause = stored.clause
    return words(f"{clause.text} {clause.section_title} {' '.join(clause.heading_path)}")


def askable_words(clauses: list[StoredClause]) -> list[str]:
    """Every distinct word of the clauses that a question keeps (stopwords and single letters
    never reach retrieval)."""
    seen: dict[str, None] = {}
    for stored in clauses:
        seen.update(dict.fromkeys(content_words(" ".join(searched_words(stored)))))
    return list(seen)


def unreachable_words(policy: LoadedPolicy) -> list[str]:
    """The words that, asked alone, bring no shown clause holding them (or a word of the
    same stem: "photo" is answered from the clauses about "photos")."""
    retriever = LexicalRetriever(policy.storage)
    holding = {c.id: {stem(w) for w in searched_words(c)} for c in policy.clauses}
    missed = []
    for word in askable_words(policy.clauses):
        found = retriever.retrieve(word, [policy.version], limit=SHOWN).ranked
        if not any(stem(word) in holding[scored.stored.id] for scored in found):
            missed.append(word)
    return missed


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.stem)
def test_every_word_of_a_policy_asked_alone_finds_a_clause_holding_it(path: Path) -> None:
    policy = load(path)
    missed = unreachable_words(policy)
    asked = len(askable_words(policy.clauses))
    # Ranking, not the tokenizer: a word the vocabulary expands ("candidate" -> applicant,
    # recruit, hire) can be outranked by a rarer expansion's clauses; its own clauses are
    # still found (the index test below). Any other miss is the tokenizer's.
    outranked = [word for word in missed if EXPANSIONS.get(word)]
    record(
        REACHABLE_CHECK,
        REACHABLE_COMMAND,
        policies=1,
        words_asked=asked,
        words_unreachable=len(missed) - len(outranked),
        words_outranked_by_an_expansion=len(outranked),
    )
    unexplained = [word for word in missed if word not in outranked]
    assert unexplained == [], (
        f"{len(unexplained)} of {asked} words of {path.name} find no clause: {unexplained}"
    )


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.stem)
def test_the_index_holds_each_stem_in_exactly_the_clauses_that_have_it(path: Path) -> None:
    policy = load(path)
    expected: dict[str, set[int]] = {}
    for stored in policy.clauses:
        for term in {stem(w) for w in searched_words(stored)}:
            expected.setdefault(term, set()).add(stored.id)
    differing = []
    for term, holders in expected.items():
        hits = policy.storage.search_clauses(f'"{term}"', [policy.version], len(policy.clauses))
        if {clause_id for clause_id, _ in hits} != holders:
            differing.append(term)
    assert differing == [], f"{len(differing)} of {len(expected)} stems: {differing[:20]}"


def test_employees_matches_every_clause_that_says_it() -> None:
    policy = load(BUNDLED_POLICY)
    saying = {c.id for c in policy.clauses if "employees" in searched_words(c)}
    hits = policy.storage.search_clauses(
        f'"{stem("employees")}"', [policy.version], len(policy.clauses)
    )
    assert len(saying) > 100  # the bundled policy says it in most sections
    assert saying <= {clause_id for clause_id, _ in hits}


def test_the_index_keeps_every_term_as_the_tokenizer_made_it() -> None:
    """FTS5's own tokenizer must not split or fold a term again: stored from every character
    of Unicode's first two planes (every living script, and the styled letters that decompose
    to capitals), the index holds exactly the terms `stems` made (no second tokenizer)."""
    every_character = " ".join(chr(code) for code in range(0x20000) if not 0xD800 <= code <= 0xDFFF)
    sample = f"{every_character} Don’t share an employee's café-photo (COVID-19, ﬁle ３)."
    storage = Storage.memory()
    clause = Clause(text=sample, section="1", section_title="Ünïcode", heading_path=("Ünïcode",))
    policy = ParsedPolicy("unicode", "Unicode", "", (), (clause,))
    storage.add_version(policy, source_name="u.md", digest="u", uploaded_by="test")
    storage.db.execute(
        "CREATE VIRTUAL TABLE temp.clause_terms USING fts5vocab(main, 'clauses_fts', 'row')"
    )
    held = {row[0] for row in storage.db.execute("SELECT term FROM temp.clause_terms")}
    made = set(stems(f"{sample} Ünïcode"))
    assert {"not", "employe", "cafe", "photo", "19", "file", "3", "unicod"} <= made
    assert held - made == set(), "the index holds terms the tokenizer never made"
    assert made - held == set(), "the index lost or changed terms the tokenizer made"


#: The bundled policy stored as the code before m009 did: the clauses' raw text, indexed by
#: FTS5's porter through m001's triggers.
def store_the_old_way(db: sqlite_utils.Database, policy: ParsedPolicy) -> int:
    db.execute(
        "INSERT INTO documents (name, title, created_at) VALUES (?, ?, '2026-01-01')",
        [policy.name, policy.title],
    )
    document = db.execute("SELECT id FROM documents").fetchone()[0]
    db.execute(
        "INSERT INTO versions (document_id, label, title, owners, source_name, content_hash, "
        "uploaded_by, uploaded_at, status, activated_at, clause_count, number, bundled) "
        "VALUES (?, '', ?, '[]', 'p.md', 'x', 'bundled', '2026-01-01', 'active', "
        "'2026-01-01', ?, 1, 1)",
        [document, policy.title, len(policy.clauses)],
    )
    version = int(db.execute("SELECT id FROM versions").fetchone()[0])
    for clause in policy.clauses:
        db.execute(
            "INSERT INTO clauses (version_id, ordinal, section, section_title, heading_path, "
            "headings, owner, text, line_start, line_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                version,
                clause.ordinal,
                clause.section,
                clause.section_title,
                json.dumps(list(clause.heading_path)),
                " > ".join(clause.heading_path),
                clause.owner,
                clause.text,
                clause.line_start,
                clause.line_end,
            ],
        )
    db.conn.commit()
    return version


def fts_is_consistent(storage: Storage) -> bool:
    try:
        storage.db.execute(
            "INSERT INTO clauses_fts (clauses_fts, rank) VALUES ('integrity-check', 1)"
        )
    except sqlite3.DatabaseError:
        return False
    return True


def test_a_database_indexed_before_m009_is_rebuilt_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m009_index_our_own_stems")
    parsed = read_policy(BUNDLED_POLICY.name, BUNDLED_POLICY.read_bytes())
    version = store_the_old_way(old, parsed)
    employees = fts_phrase(stem("employees"))
    matched_before = old.execute(
        "SELECT count(*) FROM clauses_fts WHERE clauses_fts MATCH ?", [employees]
    ).fetchone()[0]
    old.close()

    storage = Storage.open(path)
    assert storage.schema_version == len(migrations._migrations)
    assert fts_is_consistent(storage)
    clauses = storage.clauses([version])
    saying = {c.id for c in clauses if "employees" in searched_words(c)}
    hits = {cid for cid, _ in storage.search_clauses(employees, [version], len(clauses))}
    assert saying <= hits and matched_before < len(saying)
    missed = unreachable_words(LoadedPolicy(storage, version, clauses))
    assert [word for word in missed if not EXPANSIONS.get(word)] == []
    # The triggers m009 made keep the index in step with what is stored and discarded later.
    staged = storage.add_version(parsed, source_name="p.md", digest="new", uploaded_by="test")
    storage.delete_staged_version(staged)
    assert fts_is_consistent(storage)
    assert {cid for cid, _ in storage.search_clauses(employees, [version], len(clauses))} == hits
    record(
        "Data: a database indexed before m009 (porter over raw text) is rebuilt on open",
        "pytest tests/test_tokenizer.py -k before_m009",
        clauses_reindexed=len(clauses),
        clauses_saying_employees=len(saying),
        matched_by_employees_before=int(matched_before),
        matched_by_employees_after=len(hits),
        words_unreachable_after=len(missed),
    )
