"""Policy documents, their versions (one active per document, switched in one transaction and
recorded in `activations`), their clauses and the FTS5 index over them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from bot.models import Clause, ParsedPolicy, StoredClause
from bot.retrieval.terms import indexed
from bot.store import fulltext_pg
from bot.store.connection import POSTGRESQL, Connected, utcnow


@dataclass(frozen=True)
class VersionInfo:
    id: int
    document: str
    document_title: str
    label: str
    title: str
    owners: tuple[str, ...]
    source_name: str
    content_hash: str
    uploaded_by: str
    uploaded_at: str
    status: str
    activated_at: str
    clause_count: int
    #: The version's number within its document (1, 2, …); `id` is global, for commands.
    number: int = 0
    #: Loaded from the bundled example policy (`PolicyLibrary.load_bundled`), not uploaded.
    bundled: bool = False

    @property
    def display(self) -> str:
        label = self.label or self.uploaded_at[:10]
        return f"{self.document} v{self.number or self.id} ({label})"

    @property
    def reference(self) -> str:
        """How an admin types this version in a command: "acme@3" (the global id still works)."""
        return f"{self.document}@{self.number}" if self.number else str(self.id)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PolicyStore(Connected):
    """Documents, versions, activations and clauses."""

    @cached_property
    def _clause_terms(self) -> fulltext_pg.ClauseTerms:
        """On PostgreSQL, the stems of the clauses searches found, counted once."""
        return fulltext_pg.ClauseTerms()

    def _document_id(self, name: str, title: str) -> int:
        row = self.db.execute("SELECT id FROM documents WHERE name = ?", [name]).fetchone()
        if row:
            self.db.execute("UPDATE documents SET title = ? WHERE id = ?", [title, row[0]])
            return int(row[0])
        return self.db.insert_id(
            "documents", {"name": name, "title": title, "created_at": utcnow()}
        )

    def find_version(self, document: str, digest: str) -> VersionInfo | None:
        rows = self._versions("d.name = ? AND v.content_hash = ?", [document, digest])
        return rows[0] if rows else None

    def versions_with_content(self, digest: str) -> list[VersionInfo]:
        """Every version, of any document, stored from exactly these bytes."""
        return self._versions("v.content_hash = ?", [digest])

    def add_version(
        self,
        policy: ParsedPolicy,
        *,
        source_name: str,
        digest: str,
        uploaded_by: str,
        bundled: bool = False,
    ) -> int:
        """Store a new, not yet active version with its clauses, all or nothing."""
        with self.db.atomic():
            document_id = self._document_id(policy.name, policy.title)
            number = self.db.execute(
                "SELECT coalesce(max(number), 0) + 1 FROM versions WHERE document_id = ?",
                [document_id],
            ).fetchone()[0]
            version_id = self.db.insert_id(
                "versions",
                {
                    "document_id": document_id,
                    "label": policy.version_label,
                    "title": policy.title,
                    "owners": json.dumps(list(policy.owners)),
                    "source_name": source_name,
                    "content_hash": digest,
                    "uploaded_by": uploaded_by,
                    "uploaded_at": utcnow(),
                    "status": "staged",
                    "activated_at": "",
                    "clause_count": len(policy.clauses),
                    "number": int(number),
                    "bundled": int(bundled),
                },
            )
            self.db.insert_all(
                "clauses", (self._clause_row(version_id, clause) for clause in policy.clauses)
            )
        return version_id

    @staticmethod
    def _clause_row(version_id: int, clause: Clause) -> dict[str, Any]:
        headings = " > ".join(clause.heading_path)
        return {
            "version_id": version_id,
            "ordinal": clause.ordinal,
            "section": clause.section,
            "section_title": clause.section_title,
            "heading_path": json.dumps(list(clause.heading_path)),
            "headings": headings,
            "owner": clause.owner,
            "text": clause.text,
            "line_start": clause.line_start,
            "line_end": clause.line_end,
            # What the FTS5 index holds (m009): the same stems a question is searched with.
            "text_terms": indexed(clause.text),
            "section_title_terms": indexed(clause.section_title),
            "headings_terms": indexed(headings),
        }

    def activate_version(
        self,
        version_id: int,
        *,
        by: str = "",
        kind: str = "activate",
        retiring: Sequence[str] = (),
    ) -> VersionInfo:
        """Make a version its document's active one, and take the documents named in
        `retiring` out of answering; the switch is one transaction."""
        now = utcnow()
        with self.db.atomic():
            row = self.db.execute(
                "SELECT document_id FROM versions WHERE id = ?", [version_id]
            ).fetchone()
            if row is None:
                raise KeyError(version_id)
            for document in retiring:
                self._retire(document, by, now)
            self.db.execute(
                "UPDATE versions SET status = 'retired' "
                "WHERE document_id = ? AND status = 'active'",
                [row[0]],
            )
            self.db.execute(
                "UPDATE versions SET status = 'active', activated_at = ? WHERE id = ?",
                [now, version_id],
            )
            self.db.execute(
                "INSERT INTO activations (document_id, version_id, kind, activated_by, "
                "activated_at) VALUES (?, ?, ?, ?, ?)",
                [row[0], version_id, kind, by, now],
            )
        return self.version(version_id)

    def retire_document(self, document: str, *, by: str = "") -> VersionInfo | None:
        """Take a document out of answering: its active version retired, recorded in
        `activations` as kind 'retire'. The version that was active, or None if none was."""
        with self.db.atomic():
            retired = self._retire(document, by, utcnow())
        return None if retired is None else self.version(retired)

    def _retire(self, document: str, by: str, now: str) -> int | None:
        row = self.db.execute(
            "SELECT v.id, v.document_id FROM versions v JOIN documents d ON d.id = v.document_id "
            "WHERE d.name = ? AND v.status = 'active'",
            [document],
        ).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE versions SET status = 'retired' WHERE id = ?", [row[0]])
        self.db.execute(
            "INSERT INTO activations (document_id, version_id, kind, activated_by, "
            "activated_at) VALUES (?, ?, 'retire', ?, ?)",
            [row[1], row[0], by, now],
        )
        return int(row[0])

    def activations(self, document: str) -> list[dict[str, Any]]:
        """A document's activations and rollbacks, oldest first."""
        cursor = self.db.execute(
            """SELECT a.version_id, a.kind, a.activated_by, a.activated_at
            FROM activations a JOIN documents d ON d.id = a.document_id
            WHERE d.name = ? ORDER BY a.id""",
            [document],
        )
        return [
            {"version_id": r[0], "kind": r[1], "activated_by": r[2], "activated_at": r[3]}
            for r in cursor.fetchall()
        ]

    def delete_staged_version(self, version_id: int) -> None:
        """Remove a version that was never active, with its clauses; others are history."""
        with self.db.atomic():
            row = self.db.execute(
                "SELECT status, activated_at, document_id FROM versions WHERE id = ?",
                [version_id],
            ).fetchone()
            if row is None:
                raise KeyError(version_id)
            if row[0] != "staged" or row[1]:
                raise ValueError(f"version {version_id} is {row[0]}, not staged")
            self.db.execute("DELETE FROM clauses WHERE version_id = ?", [version_id])
            self.db.execute("DELETE FROM versions WHERE id = ?", [version_id])
            # A document whose only version was discarded disappears with it.
            self.db.execute(
                "DELETE FROM documents WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM versions WHERE document_id = ?)",
                [row[2], row[2]],
            )

    def version(self, version_id: int) -> VersionInfo:
        rows = self._versions("v.id = ?", [version_id])
        if not rows:
            raise KeyError(version_id)
        return rows[0]

    def versions(self, document: str | None = None) -> list[VersionInfo]:
        if document is None:
            return self._versions("1 = 1", [])
        return self._versions("d.name = ?", [document])

    def active_versions(self) -> list[VersionInfo]:
        return self._versions("v.status = 'active'", [])

    def has_policy(self) -> bool:
        return self.db.execute("SELECT 1 FROM versions LIMIT 1").fetchone() is not None

    def _versions(self, where: str, params: Sequence[Any]) -> list[VersionInfo]:
        sql = f"""
            SELECT v.id, d.name, d.title, v.label, v.title, v.owners, v.source_name,
                   v.content_hash, v.uploaded_by, v.uploaded_at, v.status, v.activated_at,
                   v.clause_count, v.number, v.bundled
            FROM versions v JOIN documents d ON d.id = v.document_id
            WHERE {where} ORDER BY d.name, v.id"""
        return [
            VersionInfo(
                id=r[0],
                document=r[1],
                document_title=r[2],
                label=r[3] or "",
                title=r[4] or "",
                owners=tuple(json.loads(r[5] or "[]")),
                source_name=r[6] or "",
                content_hash=r[7] or "",
                uploaded_by=r[8] or "",
                uploaded_at=r[9] or "",
                status=r[10],
                activated_at=r[11] or "",
                clause_count=r[12] or 0,
                number=r[13] or 0,
                bundled=bool(r[14]),
            )
            for r in self.db.execute(sql, list(params)).fetchall()
        ]

    # -- clauses --------------------------------------------------------------------------------
    _CLAUSE_COLUMNS = """c.id, c.version_id, d.name, c.text, c.section, c.section_title,
        c.heading_path, c.owner, c.ordinal, c.line_start, c.line_end, v.title"""
    _CLAUSE_JOIN = """clauses c JOIN versions v ON v.id = c.version_id
        JOIN documents d ON d.id = v.document_id"""

    @staticmethod
    def _stored_clause(row: Sequence[Any]) -> StoredClause:
        return StoredClause(
            id=row[0],
            version_id=row[1],
            document=row[2],
            clause=Clause(
                text=row[3],
                section=row[4] or "",
                section_title=row[5] or "",
                heading_path=tuple(json.loads(row[6] or "[]")),
                owner=row[7] or "",
                ordinal=row[8] or 0,
                line_start=row[9] or 0,
                line_end=row[10] or 0,
            ),
            document_title=row[11] or "",
        )

    def clauses(self, version_ids: Iterable[int]) -> list[StoredClause]:
        ids = list(version_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT {self._CLAUSE_COLUMNS} FROM {self._CLAUSE_JOIN} "
            f"WHERE c.version_id IN ({marks}) ORDER BY c.version_id, c.ordinal",
            ids,
        ).fetchall()
        return [self._stored_clause(r) for r in rows]

    def clauses_by_id(self, clause_ids: Iterable[int]) -> dict[int, StoredClause]:
        ids = list(clause_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT {self._CLAUSE_COLUMNS} FROM {self._CLAUSE_JOIN} WHERE c.id IN ({marks})", ids
        ).fetchall()
        return {r[0]: self._stored_clause(r) for r in rows}

    def search_clauses(
        self,
        match: str,
        version_ids: Sequence[int],
        limit: int,
        weights: tuple[float, float, float] = (1.0, 0.5, 0.3),
    ) -> list[tuple[int, float]]:
        """FTS5 BM25 over the given versions: (clause id, score), best first, score >= 0.

        `match` is an FTS5 query over stems as `bot.retrieval.terms` makes them (the index
        holds those, not the raw text)."""
        if not match or not version_ids:
            return []
        if self.db.engine == POSTGRESQL:
            return fulltext_pg.search(
                self.db, match, version_ids, limit, weights, self._clause_terms
            )
        marks = ",".join("?" * len(version_ids))
        sql = f"""
            SELECT c.id, -bm25(clauses_fts, ?, ?, ?) AS score
            FROM clauses_fts JOIN clauses c ON c.id = clauses_fts.rowid
            WHERE clauses_fts MATCH ? AND c.version_id IN ({marks})
            ORDER BY bm25(clauses_fts, ?, ?, ?) LIMIT ?"""
        params = [*weights, match, *version_ids, *weights, limit]
        try:
            return [(int(r[0]), float(r[1])) for r in self.db.execute(sql, params).fetchall()]
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse finds nothing rather than failing the question

    def total_clause_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM clauses").fetchone()[0])
