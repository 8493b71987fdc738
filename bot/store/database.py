"""All SQL lives here: policy documents, versions, clauses (with FTS5) and the question log."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.db import Table

from bot.models import Clause, ParsedPolicy, StoredClause

migrations = sqlite_utils.Migrations("policybot")

#: How long a handled delivery (an event id) is remembered. Slack retries an event three
#: times within about five minutes; an hour leaves room for a slow retry and a restart.
DELIVERY_RETENTION = timedelta(hours=1)
#: How often each process deletes deliveries older than that: one indexed DELETE per
#: interval, not one per event.
DELIVERY_PRUNE_INTERVAL = timedelta(minutes=10)
#: A received question not yet replied to (see `receive`).
RECEIVED, LOGGED, REPLIED = "received", "logged", "replied"


@dataclass(frozen=True)
class ReceivedQuestion:
    """A question a platform delivered and was told we received, until its reply went out."""

    id: int
    platform: str
    kind: str
    user_id: str
    conversation: str
    text: str
    received_at: datetime
    state: str
    question_id: int | None
    taken_by: str


class StorageError(RuntimeError):
    """The database cannot be opened or written; the message says what to do."""


class Database(sqlite_utils.Database):
    """sqlite_utils' Database whose transactions take the write lock when they begin.

    A deferred transaction that reads and then writes cannot wait for the lock: if another
    connection (`policybot policy load` beside a running server) committed after its first
    read, SQLite refuses the write at once with "database is locked", busy timeout or not.
    BEGIN IMMEDIATE waits for the lock up front instead, within the busy timeout.
    """

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        if self.conn.in_transaction:
            with super().atomic() as db:  # nested: a savepoint inside the open transaction
                yield db
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("documents").create(
        {"id": int, "name": str, "title": str, "created_at": str}, pk="id", not_null={"name"}
    )
    db.table("documents").create_index(["name"], unique=True)
    db.table("versions").create(
        {
            "id": int,
            "document_id": int,
            "label": str,
            "title": str,
            "owners": str,
            "source_name": str,
            "content_hash": str,
            "uploaded_by": str,
            "uploaded_at": str,
            "status": str,  # staged | active | retired
            "activated_at": str,
            "clause_count": int,
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id")],
    )
    db.table("versions").create_index(["document_id", "status"])
    db.table("clauses").create(
        {
            "id": int,
            "version_id": int,
            "ordinal": int,
            "section": str,
            "section_title": str,
            "heading_path": str,  # JSON list
            "headings": str,  # the heading path as text, searched alongside the clause
            "owner": str,
            "text": str,
            "line_start": int,
            "line_end": int,
        },
        pk="id",
        foreign_keys=[("version_id", "versions", "id")],
    )
    db.table("clauses").create_index(["version_id", "ordinal"])
    db.table("clauses").enable_fts(
        ["text", "section_title", "headings"], tokenize="porter unicode61", create_triggers=True
    )
    db.execute("CREATE VIRTUAL TABLE clauses_fts_vocab USING fts5vocab(clauses_fts, 'row')")
    db.table("questions").create(
        {
            "id": int,
            "asked_at": str,
            "platform": str,
            "asker": str,  # a pseudonym; the platform id to reply to is kept in reply_addresses
            "text": str,
            "answered": int,
            "confidence": float,
            "version_ids": str,  # JSON list
            "policy_version": str,
            "citations": str,  # JSON list of {clause_id, document, section}
            "answer_text": str,
            "answer_source": str,
            "status": str,  # answered | open | resolved | dismissed
            "feedback": str,
            "review_reason": str,
            "notes": str,  # JSON list
        },
        pk="id",
    )
    db.table("questions").create_index(["status"])
    db.table("questions").create_index(["asked_at"])
    db.table("reply_addresses").create(
        {
            "question_id": int,
            "platform": str,
            "user_id": str,
            "conversation": str,
            "created_at": str,
        },
        pk="question_id",
    )


@migrations()
def m002_llm_answers(db: sqlite_utils.Database) -> None:
    """The verdict of a grounded answer and what each LLM call cost (tokens, latency)."""
    questions = db.table("questions")
    questions.add_column("answer_verdict", str)  # "" for extractive answers
    questions.add_column("llm_model", str)
    questions.add_column("llm_prompt_tokens", int)
    questions.add_column("llm_completion_tokens", int)
    questions.add_column("llm_latency_ms", int)
    questions.add_column("llm_attempts", int)


@migrations()
def m003_review_groups(db: sqlite_utils.Database) -> None:
    """The policy team's review loop: groups of similar open questions and their answers."""
    db.table("question_groups").create(
        {
            "id": int,
            "created_at": str,
            "status": str,  # open | answered | dismissed
            "label": str,  # the first question, shown as the group's sample
            "signature": str,  # JSON: the members' combined term profile (see bot.review)
            "clause_id": int,  # the clause most members are closest to
            "document": str,
            "section": str,
            "section_title": str,
            "owner": str,  # the owning team of that section: whose queue the group is in
            "answer": str,  # the reviewed answer the bot gives to similar questions
            "answered_at": str,
            "answered_by": str,
            "closed_at": str,
        },
        pk="id",
    )
    db.table("question_groups").create_index(["status"])
    questions = db.table("questions")
    assert isinstance(questions, Table)
    questions.add_column("group_id", int)
    questions.add_column("closest_clause_id", int)
    questions.create_index(["group_id"])
    replies = db.table("reply_addresses")
    assert isinstance(replies, Table)
    replies.add_column("attempts", int)
    replies.add_column("last_error", str)
    # Names are shown to the policy team only with POLICYBOT_SHOW_ASKERS=1, so they live apart
    # from the log and expire with the reply addresses.
    db.table("asker_names").create(
        {"question_id": int, "name": str, "created_at": str}, pk="question_id"
    )


@migrations()
def m004_activation_log_and_rechecks(db: sqlite_utils.Database) -> None:
    """Who activated which version when (rollback replays it), and open questions that a
    newly activated version now answers, flagged for the policy team."""
    db.table("activations").create(
        {
            "id": int,
            "document_id": int,
            "version_id": int,
            "kind": str,  # activate | rollback
            "activated_by": str,
            "activated_at": str,
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id"), ("version_id", "versions", "id")],
    )
    db.table("activations").create_index(["document_id", "id"])
    # Versions activated before this log existed, oldest activation first.
    db.execute(
        """INSERT INTO activations (document_id, version_id, kind, activated_by, activated_at)
        SELECT document_id, id, 'activate', '', activated_at FROM versions
        WHERE activated_at != '' AND status IN ('active', 'retired')
        ORDER BY status = 'active', activated_at, id"""
    )
    questions = db.table("questions")
    questions.add_column("now_answered_version", int)  # the version holding the best clause
    questions.add_column("now_answered_at", str)
    questions.add_column("now_answered_confidence", float)
    questions.add_column("now_answered_citations", str)  # JSON list of {clause_id, ...}


@migrations()
def m005_drop_fts_vocabulary_view(db: sqlite_utils.Database) -> None:
    """Word counts now come from each version's clauses in memory (`LexicalRetriever`); the
    FTS5 vocabulary view counted every stored version, retired ones included, and is unused."""
    db.execute("DROP TABLE IF EXISTS clauses_fts_vocab")


@migrations()
def m006_handled_deliveries(db: sqlite_utils.Database) -> None:
    """What a platform delivered (an event id, a file id) and some process took, so that a
    retry of it is dropped by every process on the database, before or after a restart. The
    primary key makes taking one a single atomic insert: the first process to insert wins."""
    db.table("handled_deliveries").create(
        {"platform": str, "key": str, "first_seen": str}, pk=("platform", "key")
    )
    db.table("handled_deliveries").create_index(["first_seen"])


@migrations()
def m007_received_questions(db: sqlite_utils.Database) -> None:
    """Questions a platform was told we received (acknowledged), kept from before the
    acknowledgement until the reply went out, so that a process killed in between leaves
    them to be answered on the next start. `taken_by` is the process answering one (see
    bot.store.liveness); the question and where to reply are cleared once the reply went out."""
    db.table("received_questions").create(
        {
            "id": int,
            "platform": str,
            "kind": str,  # the platform's kind of question: a DM, a mention, a command, a check
            "user_id": str,  # the asker's platform id, to reply to
            "conversation": str,  # where to reply: a channel, channel/thread, or "" (by DM)
            "text": str,
            "received_at": str,
            "state": str,  # received | logged (in the question log) | replied
            "question_id": int,  # its row in the question log, once logged
            "taken_by": str,  # the process answering it
            "replied_at": str,
        },
        pk="id",
    )
    db.table("received_questions").create_index(["state"])


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

    @property
    def display(self) -> str:
        label = self.label or self.uploaded_at[:10]
        return f"{self.document} v{self.id} ({label})"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Storage:
    """One SQLite database file (WAL mode), migrated on open."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._pseudonym_key: bytes | None = None
        #: When this process last deleted expired handled deliveries; None: not yet.
        self._deliveries_pruned_at: datetime | None = None
        #: The database file; None for an in-memory database.
        self.path: Path | None = None

    @classmethod
    def open(cls, path: str | Path) -> Storage:
        path = Path(path)
        if path.exists() and path.is_dir():
            raise StorageError(f"{path} is a folder, not a database file.")
        if not path.parent.exists():
            raise StorageError(
                f"Cannot create the database {path}: folder {path.parent} is missing."
            )
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
            db = Database(conn)
            db.execute("PRAGMA busy_timeout = 10000")
            db.enable_wal()
            storage = cls(db)
            storage.path = path
            storage.migrate()
        except sqlite3.DatabaseError as error:
            if conn is not None:
                conn.close()  # a damaged file must not stay open (a restore replaces it)
            raise StorageError(f"Cannot use the database {path}: {error}") from None
        return storage

    @classmethod
    def memory(cls) -> Storage:
        storage = cls(Database(memory=True))
        storage.migrate()
        return storage

    def migrate(self) -> None:
        migrations.apply(self.db)

    @property
    def schema_version(self) -> int:
        return len(migrations.applied(self.db))

    def close(self) -> None:
        self.db.close()

    def backup(self, destination: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup), safe while serving."""
        if destination.exists():
            raise StorageError(f"{destination} exists; choose a new file for the backup.")
        try:
            target = sqlite3.connect(str(destination))
        except sqlite3.Error as error:
            raise StorageError(f"Cannot write the backup {destination}: {error}") from None
        try:
            with target:
                self.db.conn.backup(target)
        except sqlite3.Error as error:
            target.close()
            destination.unlink(missing_ok=True)
            raise StorageError(f"Backup to {destination} failed: {error}") from None
        target.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._writing("The database"), self.db.atomic():
            yield

    def _table(self, name: str) -> Table:
        table = self.db[name]
        assert isinstance(table, Table)
        return table

    # -- policy documents and versions ----------------------------------------------------------
    def _document_id(self, name: str, title: str) -> int:
        row = self.db.execute("SELECT id FROM documents WHERE name = ?", [name]).fetchone()
        if row:
            self.db.execute("UPDATE documents SET title = ? WHERE id = ?", [title, row[0]])
            return int(row[0])
        table = self._table("documents")
        table.insert({"name": name, "title": title, "created_at": utcnow()})
        assert table.last_pk is not None
        return int(table.last_pk)

    def find_version(self, document: str, digest: str) -> VersionInfo | None:
        rows = self._versions("d.name = ? AND v.content_hash = ?", [document, digest])
        return rows[0] if rows else None

    def add_version(
        self, policy: ParsedPolicy, *, source_name: str, digest: str, uploaded_by: str
    ) -> int:
        """Store a new, not yet active version with its clauses, all or nothing."""
        with self.db.atomic():
            document_id = self._document_id(policy.name, policy.title)
            versions = self._table("versions")
            versions.insert(
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
                }
            )
            assert versions.last_pk is not None
            version_id = int(versions.last_pk)
            self._table("clauses").insert_all(
                (self._clause_row(version_id, clause) for clause in policy.clauses),
                batch_size=500,
            )
        return version_id

    @staticmethod
    def _clause_row(version_id: int, clause: Clause) -> dict[str, Any]:
        return {
            "version_id": version_id,
            "ordinal": clause.ordinal,
            "section": clause.section,
            "section_title": clause.section_title,
            "heading_path": json.dumps(list(clause.heading_path)),
            "headings": " > ".join(clause.heading_path),
            "owner": clause.owner,
            "text": clause.text,
            "line_start": clause.line_start,
            "line_end": clause.line_end,
        }

    def activate_version(
        self, version_id: int, *, by: str = "", kind: str = "activate"
    ) -> VersionInfo:
        """Make a version its document's active one; the switch is one transaction."""
        now = utcnow()
        with self.db.atomic():
            row = self.db.execute(
                "SELECT document_id FROM versions WHERE id = ?", [version_id]
            ).fetchone()
            if row is None:
                raise KeyError(version_id)
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
                   v.clause_count
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
        """FTS5 BM25 over the given versions: (clause id, score), best first, score >= 0."""
        if not match or not version_ids:
            return []
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

    # -- question log ---------------------------------------------------------------------------
    def pseudonym(self, platform: str, user_id: str) -> str:
        """A stable, non-reversible name for an asker, so the log shows no identities."""
        if not user_id:
            return ""
        if self._pseudonym_key is None:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()
            if row is None:
                key = secrets.token_hex(32)
                # atomic, not commit(): the caller may be inside a transaction of its own.
                with self._writing("The asker pseudonym key"), self.db.atomic():
                    self.db.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('pseudonym_key', ?)",
                        [key],
                    )
                row = self.db.execute(
                    "SELECT value FROM meta WHERE key = 'pseudonym_key'"
                ).fetchone()
            self._pseudonym_key = bytes.fromhex(row[0])
        digest = hmac.new(self._pseudonym_key, f"{platform}:{user_id}".encode(), "sha256")
        return f"asker-{digest.hexdigest()[:10]}"

    def log_question(
        self,
        record: dict[str, Any],
        reply_to: dict[str, str] | None = None,
        asker_name: str = "",
        received_id: int | None = None,
    ) -> int:
        """Log a question; with `received_id`, its received question is marked logged in the
        same transaction, so it is never logged a second time after a restart."""
        row = dict(record)
        for key in ("version_ids", "citations", "notes"):
            if key in row and not isinstance(row[key], str):
                row[key] = json.dumps(row[key])
        row.setdefault("asked_at", utcnow())
        with self._writing("The question log"), self.db.atomic():
            table = self._table("questions")
            table.insert(row)
            assert table.last_pk is not None
            question_id = int(table.last_pk)
            if reply_to and reply_to.get("user_id"):
                self._table("reply_addresses").insert(
                    {"question_id": question_id, "created_at": utcnow(), **reply_to}
                )
            if asker_name:
                self._table("asker_names").insert(
                    {"question_id": question_id, "name": asker_name, "created_at": utcnow()}
                )
            if received_id is not None:
                self.db.execute(
                    "UPDATE received_questions SET state = ?, question_id = ? "
                    "WHERE id = ? AND state = ?",
                    [LOGGED, question_id, received_id, RECEIVED],
                )
        return question_id

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn SQLite's refusals to write (disk full, read-only file or folder, a lock held
        past the busy timeout) into a StorageError that says what could not be stored."""
        try:
            yield
        except sqlite3.OperationalError as error:
            raise StorageError(f"{what} cannot be written: {error}.") from error

    def update_question(self, question_id: int, **fields: Any) -> None:
        if not fields:
            return
        for key in ("notes", "citations", "version_ids"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = json.dumps(fields[key])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.db.atomic():
            cursor = self.db.execute(
                f"UPDATE questions SET {assignments} WHERE id = ?", [*fields.values(), question_id]
            )
        if cursor.rowcount == 0:
            raise KeyError(question_id)

    def question(self, question_id: int) -> dict[str, Any]:
        rows = self._questions("id = ?", [question_id], limit=1)
        if not rows:
            raise KeyError(question_id)
        return rows[0]

    def questions(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        if status is None:
            return self._questions("1 = 1", [], limit)
        return self._questions("status = ?", [status], limit)

    def _questions(self, where: str, params: Sequence[Any], limit: int) -> list[dict[str, Any]]:
        cursor = self.db.execute(
            f"SELECT * FROM questions WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        columns = [d[0] for d in cursor.description]
        out = []
        for values in cursor.fetchall():
            row = dict(zip(columns, values, strict=True))
            for key in ("version_ids", "citations", "notes", "now_answered_citations"):
                row[key] = json.loads(row[key]) if row.get(key) else []
            row["answered"] = bool(row["answered"])
            out.append(row)
        return out

    def open_unanswered_questions(self) -> list[tuple[int, str]]:
        """(id, text) of questions on the review list that the policy did not answer."""
        rows = self.db.execute(
            "SELECT id, text FROM questions WHERE status = 'open' AND answered = 0 ORDER BY id"
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def mark_now_answered(
        self,
        question_id: int,
        version_id: int | None,
        confidence: float = 0.0,
        citations: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Flag (or, with version_id None, unflag) an open question the active policy answers."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE questions SET now_answered_version = ?, now_answered_at = ?, "
                "now_answered_confidence = ?, now_answered_citations = ? WHERE id = ?",
                [
                    version_id,
                    utcnow() if version_id is not None else None,
                    round(confidence, 4) if version_id is not None else None,
                    json.dumps(list(citations)) if version_id is not None else None,
                    question_id,
                ],
            )

    def reply_address(self, question_id: int) -> dict[str, str] | None:
        row = self.db.execute(
            "SELECT platform, user_id, conversation FROM reply_addresses WHERE question_id = ?",
            [question_id],
        ).fetchone()
        if row is None:
            return None
        return {"platform": row[0], "user_id": row[1], "conversation": row[2]}

    def asker_names(self, question_ids: Iterable[int]) -> dict[int, str]:
        ids = list(question_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT question_id, name FROM asker_names WHERE question_id IN ({marks})", ids
        ).fetchall()
        return {int(r[0]): r[1] for r in rows}

    def questions_between(
        self,
        *,
        status: str | None = None,
        since: str = "",
        until: str = "",
    ) -> list[dict[str, Any]]:
        """Questions asked in [since, until) (ISO times; "" = open end), oldest first.

        Each row also carries `owner`, `closest_section` and `closest_title`: the closest
        clause's section and team, through which the policy team's queues are split.
        """
        where = ["1 = 1"]
        params: list[Any] = []
        if status is not None:
            where.append("q.status = ?")
            params.append(status)
        if since:
            where.append("q.asked_at >= ?")
            params.append(since)
        if until:
            where.append("q.asked_at < ?")
            params.append(until)
        cursor = self.db.execute(
            f"""SELECT q.*, coalesce(g.owner, c.owner, '') AS owner,
                       coalesce(g.section, c.section, '') AS closest_section,
                       coalesce(g.section_title, c.section_title, '') AS closest_title,
                       coalesce(g.status, '') AS group_status,
                       coalesce(g.answer, '') AS reviewed_answer,
                       coalesce(g.answered_at, '') AS reviewed_at
                FROM questions q
                LEFT JOIN question_groups g ON g.id = q.group_id
                LEFT JOIN clauses c ON c.id = q.closest_clause_id
                WHERE {" AND ".join(where)} ORDER BY q.asked_at, q.id""",
            params,
        )
        columns = [d[0] for d in cursor.description]
        out = []
        for values in cursor.fetchall():
            row = dict(zip(columns, values, strict=True))
            for key in ("version_ids", "citations", "notes"):
                row[key] = json.loads(row[key]) if row.get(key) else []
            row["answered"] = bool(row["answered"])
            out.append(row)
        return out

    # -- review groups --------------------------------------------------------------------------
    def create_group(self, row: dict[str, Any]) -> int:
        with self.db.atomic():
            table = self._table("question_groups")
            table.insert({"created_at": utcnow(), "answer": "", "answered_at": "", **row})
        assert table.last_pk is not None
        return int(table.last_pk)

    def update_group(self, group_id: int, **fields: Any) -> None:
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.db.atomic():
            cursor = self.db.execute(
                f"UPDATE question_groups SET {assignments} WHERE id = ?",
                [*fields.values(), group_id],
            )
        if cursor.rowcount == 0:
            raise KeyError(group_id)

    _GROUP_SELECT = """
        SELECT g.*, count(q.id) AS count, coalesce(min(q.asked_at), g.created_at) AS first_seen,
               coalesce(max(q.asked_at), g.created_at) AS last_seen,
               coalesce(group_concat(DISTINCT q.review_reason), '') AS reasons
        FROM question_groups g LEFT JOIN questions q ON q.group_id = g.id"""

    def _groups(self, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = self.db.execute(
            f"{self._GROUP_SELECT} WHERE {where} GROUP BY g.id ORDER BY g.id", list(params)
        )
        columns = [d[0] for d in cursor.description]
        out = []
        for values in cursor.fetchall():
            row = dict(zip(columns, values, strict=True))
            row["signature"] = json.loads(row["signature"] or "{}")
            out.append(row)
        return out

    def group(self, group_id: int) -> dict[str, Any]:
        rows = self._groups("g.id = ?", [group_id])
        if not rows:
            raise KeyError(group_id)
        return rows[0]

    def groups(self, status: str | None = None) -> list[dict[str, Any]]:
        if status is None:
            return self._groups("1 = 1", [])
        return self._groups("g.status = ?", [status])

    def group_profiles(self, status: str) -> list[tuple[int, str, str, str]]:
        """(id, signature, document, section) of the groups of a status: what matching a new
        question needs, without counting every group's members on each question asked. The
        signature is the stored JSON text, so the caller decodes only the groups it needs."""
        rows = self.db.execute(
            "SELECT id, signature, document, section FROM question_groups "
            "WHERE status = ? ORDER BY id",
            [status],
        ).fetchall()
        return [(int(r[0]), r[1] or "{}", r[2] or "", r[3] or "") for r in rows]

    def member_closest_clauses(self, group_id: int) -> list[int]:
        """The clause each member question was closest to, in the order they were asked."""
        rows = self.db.execute(
            "SELECT closest_clause_id FROM questions WHERE group_id = ? "
            "AND closest_clause_id IS NOT NULL ORDER BY id",
            [group_id],
        ).fetchall()
        return [int(r[0]) for r in rows]

    def group_members(self, group_id: int) -> list[dict[str, Any]]:
        rows = self._questions("group_id = ?", [group_id], limit=1_000_000)
        return sorted(rows, key=lambda row: row["id"])

    def close_group_questions(self, group_id: int, status: str) -> list[int]:
        """Move the group's open questions to `status`; returns their ids."""
        rows = self.db.execute(
            "SELECT id FROM questions WHERE group_id = ? AND status = 'open' ORDER BY id",
            [group_id],
        ).fetchall()
        ids = [int(r[0]) for r in rows]
        with self.db.atomic():
            self.db.execute(
                "UPDATE questions SET status = ? WHERE group_id = ? AND status = 'open'",
                [status, group_id],
            )
        return ids

    # -- delivering answers to askers -----------------------------------------------------------
    def pending_deliveries(self, group_id: int | None = None) -> list[dict[str, Any]]:
        """Askers of resolved questions whose reply address is still kept: not yet reached."""
        where = "q.status = 'resolved' AND g.status = 'answered'"
        params: list[Any] = []
        if group_id is not None:
            where += " AND g.id = ?"
            params.append(group_id)
        cursor = self.db.execute(
            f"""SELECT q.id AS question_id, q.text, g.id AS group_id, g.answer, g.answered_at,
                       r.platform, r.user_id, r.conversation, coalesce(r.attempts, 0) AS attempts
                FROM reply_addresses r JOIN questions q ON q.id = r.question_id
                JOIN question_groups g ON g.id = q.group_id
                WHERE {where} ORDER BY q.id""",
            params,
        )
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]

    def delete_reply_address(self, question_id: int) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM reply_addresses WHERE question_id = ?", [question_id])

    def delete_reply_addresses_of_group(self, group_id: int) -> int:
        with self.db.atomic():
            cursor = self.db.execute(
                "DELETE FROM reply_addresses WHERE question_id IN "
                "(SELECT id FROM questions WHERE group_id = ?)",
                [group_id],
            )
        return int(cursor.rowcount)

    def record_delivery_failure(self, question_id: int, error: str) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE reply_addresses SET attempts = coalesce(attempts, 0) + 1, "
                "last_error = ? WHERE question_id = ?",
                [error[:500], question_id],
            )

    # -- handled deliveries (a platform's retries of an event) ----------------------------------
    def first_delivery(self, platform: str, key: str, *, now: datetime | None = None) -> bool:
        """Record that `platform` delivered `key`: True the first time any process on this
        database records it, False for a repeat within DELIVERY_RETENTION. StorageError
        when the database refuses the write."""
        return self.receive(platform, key, None, now=now) != -1

    def receive(
        self,
        platform: str,
        key: str,
        question: dict[str, str] | None,
        *,
        taken_by: str = "",
        now: datetime | None = None,
    ) -> int | None:
        """Record that `platform` delivered `key` and, the first time, the question it carries
        (`question`: kind, user_id, conversation, text), in one transaction. Returns the
        received question's id (None when there is no question), or -1 for a repeat of a
        delivery already taken within DELIVERY_RETENTION. StorageError when the database
        refuses the write."""
        now = now or datetime.now(UTC)
        pruned_at = self._deliveries_pruned_at
        prune = pruned_at is None or now - pruned_at >= DELIVERY_PRUNE_INTERVAL
        received_id: int | None = None
        with self._writing("The record of handled events"), self.db.atomic():
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO handled_deliveries (platform, key, first_seen) "
                "VALUES (?, ?, ?)",
                [platform, key, now.isoformat(timespec="seconds")],
            ).rowcount
            if inserted == 1 and question is not None:
                received_id = self.db.execute(
                    "INSERT INTO received_questions (platform, kind, user_id, conversation, "
                    "text, received_at, state, taken_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        platform,
                        question.get("kind", ""),
                        question.get("user_id", ""),
                        question.get("conversation", ""),
                        question.get("text", ""),
                        now.isoformat(timespec="milliseconds"),
                        RECEIVED,
                        taken_by,
                    ],
                ).lastrowid
            if prune:
                self.prune_deliveries(now - DELIVERY_RETENTION)
        if prune:
            self._deliveries_pruned_at = now
        if inserted != 1:
            return -1
        return received_id

    def mark_replied(self, received_id: int, *, now: datetime | None = None) -> None:
        """The reply to a received question went out: what it said and where to reply are
        no longer needed (a check of a draft post is never logged, so its text goes here)."""
        now = now or datetime.now(UTC)
        with self._writing("The record of received questions"), self.db.atomic():
            self.db.execute(
                "UPDATE received_questions SET state = ?, replied_at = ?, text = '', "
                "user_id = '', conversation = '' WHERE id = ?",
                [REPLIED, now.isoformat(timespec="milliseconds"), received_id],
            )

    def unreplied(self, platform: str | None = None) -> list[ReceivedQuestion]:
        """Received questions whose reply has not gone out, oldest first."""
        where, params = "state != ?", [REPLIED]
        if platform is not None:
            where += " AND platform = ?"
            params.append(platform)
        rows = self.db.execute(
            "SELECT id, platform, kind, user_id, conversation, text, received_at, state, "
            f"question_id, taken_by FROM received_questions WHERE {where} ORDER BY id",
            params,
        ).fetchall()
        return [
            ReceivedQuestion(
                id=int(r[0]),
                platform=r[1] or "",
                kind=r[2] or "",
                user_id=r[3] or "",
                conversation=r[4] or "",
                text=r[5] or "",
                received_at=datetime.fromisoformat(r[6]),
                state=r[7],
                question_id=r[8],
                taken_by=r[9] or "",
            )
            for r in rows
        ]

    def take_received(self, received_id: int, taker: str, from_taker: str) -> bool:
        """Move a received question from one process (one no longer running) to `taker`;
        False when another process took it first or its reply has gone out."""
        with self._writing("The record of received questions"), self.db.atomic():
            cursor = self.db.execute(
                "UPDATE received_questions SET taken_by = ? "
                "WHERE id = ? AND taken_by = ? AND state != ?",
                [taker, received_id, from_taker, REPLIED],
            )
        return cursor.rowcount == 1

    def prune_deliveries(self, before: datetime) -> int:
        """Forget handled deliveries first seen before `before`, and received questions
        replied to before it; how many deliveries were forgotten."""
        with self.db.atomic():
            cursor = self.db.execute(
                "DELETE FROM handled_deliveries WHERE first_seen < ?",
                [before.isoformat(timespec="seconds")],
            )
            self.db.execute(
                "DELETE FROM received_questions WHERE state = ? AND replied_at < ?",
                [REPLIED, before.isoformat(timespec="milliseconds")],
            )
        return int(cursor.rowcount)

    # -- retention ------------------------------------------------------------------------------
    def expire_contacts(self, before: str) -> int:
        """Delete reply addresses and asker names kept since before `before` (ISO time)."""
        with self.db.atomic():
            addresses = self.db.execute(
                "DELETE FROM reply_addresses WHERE created_at < ?", [before]
            ).rowcount
            self.db.execute("DELETE FROM asker_names WHERE created_at < ?", [before])
        return int(addresses)

    def purge_questions(self, before: str, *, dry_run: bool = False) -> dict[str, int]:
        """Delete questions asked before `before`, with everything kept about their askers.

        Groups left without questions go too, except answered ones: their reviewed answer and
        term profile keep teaching the bot.
        """
        old = "SELECT id FROM questions WHERE asked_at < ?"
        counts = {
            "questions": int(
                self.db.execute(f"SELECT count(*) FROM ({old})", [before]).fetchone()[0]
            ),
            "reply_addresses": int(
                self.db.execute(
                    f"SELECT count(*) FROM reply_addresses WHERE question_id IN ({old})", [before]
                ).fetchone()[0]
            ),
        }
        empty_groups = """SELECT g.id FROM question_groups g WHERE g.status != 'answered'
            AND NOT EXISTS (SELECT 1 FROM questions q WHERE q.group_id = g.id
                            AND q.asked_at >= ?)"""
        counts["groups"] = int(
            self.db.execute(f"SELECT count(*) FROM ({empty_groups})", [before]).fetchone()[0]
        )
        if dry_run:
            return counts
        with self.db.atomic():
            self.db.execute(f"DELETE FROM reply_addresses WHERE question_id IN ({old})", [before])
            self.db.execute(f"DELETE FROM asker_names WHERE question_id IN ({old})", [before])
            self.db.execute(f"DELETE FROM question_groups WHERE id IN ({empty_groups})", [before])
            self.db.execute("DELETE FROM questions WHERE asked_at < ?", [before])
        return counts
