"""The schema, as `sqlite_utils` migrations applied in order on open (recorded in
`_sqlite_migrations`; their count is the schema version). A migration, once released, is
never edited: a change is a new one."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.db import Table

from bot.retrieval.terms import indexed

migrations = sqlite_utils.Migrations("policybot")


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


@migrations()
def m008_document_numbers_and_bundled(db: sqlite_utils.Database) -> None:
    """Versions numbered per document ("handbook v3"), not by the global id; the bundled
    example's versions marked when loaded (the first real policy replaces it, keyed on that
    mark, not on a title or uploader name); `activations.kind` also records 'retire'."""
    versions = db.table("versions")
    assert isinstance(versions, Table)
    versions.add_column("number", int)
    versions.add_column("bundled", int)
    db.execute(
        """UPDATE versions SET number = (
            SELECT count(*) FROM versions earlier
            WHERE earlier.document_id = versions.document_id AND earlier.id <= versions.id)"""
    )
    # Before this mark existed, only the bundled load recorded its uploader as "bundled".
    db.execute("UPDATE versions SET bundled = CASE WHEN uploaded_by = 'bundled' THEN 1 ELSE 0 END")


@migrations()
def m009_index_our_own_stems(db: sqlite_utils.Database) -> None:
    """The FTS5 index over the clauses' stems as `bot.retrieval.terms` makes them, the same
    tokenizer questions go through. It was FTS5's porter over the raw text while questions
    sent stems already made in Python, which porter stemmed a second time ("disclose" ->
    disclos -> disclo), so many words of a policy could not be found through themselves.

    The stems live in their own columns (kept beside the text, so an external-content index
    can be deleted from and rebuilt); FTS5's `ascii` tokenizer only splits them at spaces."""
    # The clause's text, section title and heading path as `indexed` stores them, in the
    # order of `search_clauses`' weights.
    term_columns = ("text_terms", "section_title_terms", "headings_terms")
    db.execute("DROP TRIGGER IF EXISTS clauses_ai")
    db.execute("DROP TRIGGER IF EXISTS clauses_ad")
    db.execute("DROP TRIGGER IF EXISTS clauses_au")
    db.execute("DROP TABLE IF EXISTS clauses_fts")
    clauses = db.table("clauses")
    assert isinstance(clauses, Table)
    for column in term_columns:
        clauses.add_column(column, str)
    rows = db.execute("SELECT id, text, section_title, headings FROM clauses").fetchall()
    db.conn.executemany(
        "UPDATE clauses SET text_terms = ?, section_title_terms = ?, headings_terms = ? "
        "WHERE id = ?",
        (
            (indexed(text or ""), indexed(title or ""), indexed(headings or ""), clause_id)
            for clause_id, text, title, headings in rows
        ),
    )
    columns = ", ".join(term_columns)
    old = ", ".join(f"old.{c}" for c in term_columns)
    new = ", ".join(f"new.{c}" for c in term_columns)
    db.execute(
        f"CREATE VIRTUAL TABLE clauses_fts USING fts5({columns}, tokenize='ascii', "
        "content='clauses', content_rowid='id')"
    )
    db.execute(
        f"""CREATE TRIGGER clauses_ai AFTER INSERT ON clauses BEGIN
            INSERT INTO clauses_fts (rowid, {columns}) VALUES (new.id, {new});
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER clauses_ad AFTER DELETE ON clauses BEGIN
            INSERT INTO clauses_fts (clauses_fts, rowid, {columns})
            VALUES ('delete', old.id, {old});
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER clauses_au AFTER UPDATE ON clauses BEGIN
            INSERT INTO clauses_fts (clauses_fts, rowid, {columns})
            VALUES ('delete', old.id, {old});
            INSERT INTO clauses_fts (rowid, {columns}) VALUES (new.id, {new});
        END"""
    )
    db.execute("INSERT INTO clauses_fts (clauses_fts) VALUES ('rebuild')")


@migrations()
def m010_clause_vectors(db: sqlite_utils.Database) -> None:
    """Each clause's sentence embedding, per model, so that a new process reads the vectors
    instead of computing them again (seconds for a long policy). `passage_digest` is the
    SHA-256 of the text that was embedded: a vector is used only for that text, whatever
    happens to the clause ids. A clause deleted (a discarded upload) takes its vectors along,
    since SQLite may give its id to a later clause."""
    db.table("clause_vectors").create(
        {
            "clause_id": int,
            "model": str,  # the model's name and fingerprint (bot.retrieval.minilm.fingerprint)
            "passage_digest": str,
            "dimensions": int,
            "vector": bytes,  # little-endian float32, `dimensions` of them
        },
        pk=("clause_id", "model"),
    )
    db.execute(
        """CREATE TRIGGER clause_vectors_follow_clauses AFTER DELETE ON clauses
        BEGIN DELETE FROM clause_vectors WHERE clause_id = OLD.id; END"""
    )


@migrations()
def m011_question_outcomes(db: sqlite_utils.Database) -> None:
    """Each question's outcome: answered, uncertain (the closest clauses shown as possibly not
    what was asked, and the question sent to the policy team) or not_covered. Before this,
    a question was answered or it was not: every other row was a not-covered one."""
    questions = db.table("questions")
    assert isinstance(questions, Table)
    questions.add_column("outcome", str)
    db.execute(
        "UPDATE questions SET outcome = CASE WHEN answered = 1 THEN 'answered' "
        "ELSE 'not_covered' END"
    )


@migrations()
def m012_feedback_comments(db: sqlite_utils.Database) -> None:
    """What an asker wrote with a rating (Teams' feedback form has a comment box): kept with
    the question for the policy team, scrubbed of secrets like the rest of the row."""
    questions = db.table("questions")
    assert isinstance(questions, Table)
    questions.add_column("feedback_comment", str)


@migrations()
def m013_delivery_claims(db: sqlite_utils.Database) -> None:
    """Several processes on one database (replicas, `questions answer` beside `serve`): a
    reviewed answer's delivery to one asker is claimed on its reply address for a lease
    (`claimed_by`, `claimed_until`) before it is sent, so no two processes send it; a claim
    whose lease ran out (its process died mid-send) is taken again. The weekly digest is
    claimed the same way, one row per week, so it is posted once whatever runs it."""
    addresses = db.table("reply_addresses")
    assert isinstance(addresses, Table)
    addresses.add_column("claimed_by", str)
    addresses.add_column("claimed_until", str)
    db.table("digest_posts").create(
        {"week": str, "claimed_by": str, "claimed_until": str, "posted_at": str}, pk="week"
    )


@migrations()
def m014_conversations(db: sqlite_utils.Database) -> None:
    """Conversations that continue: the question retrieval saw for a follow-up (`standalone`,
    NULL when it saw the question as asked) beside what was asked, and the conversation it was
    asked in (`conversation_key`: a keyed pseudonym of the platform's thread, never its ids),
    so a later turn finds the asker's earlier ones in the log."""
    questions = db.table("questions")
    assert isinstance(questions, Table)
    questions.add_column("standalone", str)
    questions.add_column("conversation_key", str)
    questions.create_index(["conversation_key", "asked_at"])


@migrations()
def m015_console_sessions(db: sqlite_utils.Database) -> None:
    """The web console's sign-ins, all server-side. `console_sessions`: one row per signed-in
    browser, found by the SHA-256 of its cookie's token (the token itself is never stored),
    with who signed in (platform, id, name; their roles are read from the settings on every
    request, so they are not kept), how, and its times (an idle and an absolute end).
    `console_links`: one-time sign-in links printed by `policybot console link`, by hash,
    used at most once. `console_sign_ins`: an identity provider's sign-in under way, by the
    hash of its `state`, bound to the browser that started it by the hash of a cookie."""
    db.table("console_sessions").create(
        {
            "id": int,
            "token_hash": str,
            "platform": str,
            "user_id": str,
            "name": str,
            "via": str,
            "created_at": str,
            "last_seen_at": str,
            "expires_at": str,
        },
        pk="id",
    )
    db.execute("CREATE UNIQUE INDEX idx_console_sessions_token ON console_sessions (token_hash)")
    db.table("console_links").create(
        {
            "token_hash": str,
            "platform": str,
            "user_id": str,
            "name": str,
            "created_at": str,
            "expires_at": str,
            "used_at": str,
        },
        pk="token_hash",
    )
    db.table("console_sign_ins").create(
        {
            "state_hash": str,
            "provider": str,
            "browser_hash": str,
            "created_at": str,
            "expires_at": str,
        },
        pk="state_hash",
    )


@migrations()
def m016_review_actions(db: sqlite_utils.Database) -> None:
    """Who did what to a review group, when: every answer, edit of an answer, dismissal and
    withdrawal, whatever the surface (Slack, Teams, the CLI, the web console), kept after
    the group's own columns are overwritten by the next action."""
    db.table("review_actions").create(
        {
            "id": int,
            "group_id": int,
            "action": str,  # answered | edited | dismissed | withdrawn
            "actor": str,  # Actor.recorded_as, or what the CLI's --by says
            "acted_at": str,
            "detail": str,
        },
        pk="id",
    )
    db.table("review_actions").create_index(["group_id", "id"])


@migrations()
def m017_received_conversations(db: sqlite_utils.Database) -> None:
    """The conversation a received question continues (`conversation_key`: the same keyed
    pseudonym m014 logs, never the platform's ids), so one answered after a restart is read
    with the turns before it as a live one is; cleared with the rest once the reply went out."""
    received = db.table("received_questions")
    assert isinstance(received, Table)
    received.add_column("conversation_key", str)


@migrations()
def m018_answer_messages(db: sqlite_utils.Database) -> None:
    """Which question each answer message shows, by the platform's message id: Teams' feedback
    buttons name only the message they are under. Kept in the database (it was kept in each
    process), so feedback after a restart, or reaching another replica, finds its question."""
    db.table("answer_messages").create(
        {
            "platform": str,
            "conversation": str,
            "message_id": str,
            "question_id": int,
            "created_at": str,
        },
        pk=("platform", "conversation", "message_id"),
    )
    db.execute("CREATE INDEX answer_messages_created ON answer_messages (created_at)")
