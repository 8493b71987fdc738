"""SQLite and PostgreSQL behind the one storage layer: the same ranking, `policybot migrate`,
`/healthz` naming the engine, and DATABASE_URL's password kept out of everything shown."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import Settings, prepare_threshold_of
from bot.evaluation import load_questions
from bot.policies import PolicyLibrary
from bot.redaction import Redactor
from bot.retrieval.lexical import LexicalRetriever
from bot.store.database import Storage, StorageError, migrations
from tests.postgres import Cluster
from tests.reliability import record

ROOT = Path(__file__).resolve().parent.parent
SHARED_POLICIES = ROOT.parent / "shared" / "eval" / "policies"
PASSWORD = "pg-Secret-4f9b2c"


def _policy_sets() -> list[tuple[Path, Path]]:
    """The bundled policy with its labeled questions, and each shared policy with its own."""
    sets = [
        (
            ROOT / "policies" / "social-media-and-electronic-communication.md",
            ROOT / "eval" / "bundled-policy.jsonl",
        )
    ]
    for questions in sorted((ROOT / "eval" / "external").glob("*.jsonl")):
        policy = SHARED_POLICIES / f"{questions.stem}.md"
        if policy.exists():
            sets.append((policy, questions))
    return sets


def test_both_engines_rank_the_same_candidates(postgres_cluster: Cluster) -> None:
    """PostgreSQL's clause search (its GIN index, FTS5's bm25 over the same counts) gives the
    lexical retriever the candidates SQLite's FTS5 gives it: the top five per question, and
    recall@3, compared over every labeled set."""
    questions = identical = 0
    hits = {"sqlite": 0, "postgresql": 0}
    for policy, labeled in _policy_sets():
        url = postgres_cluster.new_database()
        stores = {"sqlite": Storage.memory(), "postgresql": Storage.open(url)}
        try:
            versions = {
                name: PolicyLibrary(store).load_file(policy).version.id
                for name, store in stores.items()
            }
            retrievers = {name: LexicalRetriever(store) for name, store in stores.items()}
            for item in load_questions(labeled):
                questions += 1
                ranked = {
                    name: retrievers[name].retrieve(item.question, [versions[name]], 5).ranked
                    for name in stores
                }
                # Clauses by their place in the document: ids are each database's own.
                tops = {name: [r.stored.clause.ordinal for r in ranked[name]] for name in stores}
                identical += tops["sqlite"] == tops["postgresql"]
                for name in stores:
                    hits[name] += any(item.matches(r.stored) for r in ranked[name][:3])
        finally:
            for store in stores.values():
                store.close()
            postgres_cluster.drop(url)
    record(
        "Both engines rank the same candidates",
        "pytest tests/test_storage_engines.py -k rank",
        questions=questions,
        identical_top5=identical,
        recall_at_3_sqlite=round(hits["sqlite"] / questions, 3),
        recall_at_3_postgresql=round(hits["postgresql"] / questions, 3),
    )
    assert questions > 0
    assert identical / questions >= 0.95
    assert abs(hits["sqlite"] - hits["postgresql"]) <= max(1, questions // 100)


def test_migrate_prints_the_version_reached_and_is_idempotent(database_location: str) -> None:
    engine = "postgresql" if database_location.startswith("postgresql") else "sqlite"
    expected = f"{engine} schema version {len(migrations._migrations)}"
    for _ in range(2):
        result = CliRunner().invoke(main, ["--db", database_location, "migrate"], env={})
        assert result.exit_code == 0, result.output
        assert result.output.strip() == expected


def test_a_database_url_password_is_never_shown(postgres_cluster: Cluster) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = int(probe.getsockname()[1])
    url = f"postgresql://policybot:{PASSWORD}@127.0.0.1:{closed}/nowhere?password={PASSWORD}"
    with pytest.raises(StorageError) as refused:
        Storage.open(url)
    assert "127.0.0.1" in str(refused.value) and PASSWORD not in str(refused.value)
    settings = Settings.from_env({"DATABASE_URL": url})
    assert settings.database == url
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in Redactor.of(settings).scrub(f"connecting to {url}")
    result = CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": url})
    assert result.exit_code != 0 and PASSWORD not in result.output


def test_a_database_url_that_is_not_postgresql_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL must be a PostgreSQL URL") as refused:
        Settings.from_env({"DATABASE_URL": f"mysql://root:{PASSWORD}@db/x"})
    assert PASSWORD not in str(refused.value)


def test_serve_on_postgresql_says_so_on_healthz(postgres_cluster: Cluster, tmp_path: Path) -> None:
    """`policybot serve` with DATABASE_URL (a password in it; the throwaway cluster trusts
    any): /healthz names the engine and schema version, and nothing it prints holds the
    password."""
    database = postgres_cluster.new_database()
    url = database.replace("postgres@", f"postgres:{PASSWORD}@")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POLICYBOT_", "Microsoft", "SLACK_", "OPENAI_", "DATABASE_"))
    }
    env.update(DATABASE_URL=url, POLICYBOT_RETRIEVER="lexical", POLICYBOT_DB=str(tmp_path / "x"))
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        # A start-up limit, not a timing: a build that never listens fails here.
        readable, _, _ = select.select([process.stdout], [], [], 60)
        assert readable, "serve printed nothing within 60 s"
        first = process.stdout.readline()
        assert "listening on" in first, first
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as response:
            health = json.loads(response.read())
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert health["ok"] is True
    assert health["database"] == {
        "engine": "postgresql",
        "schema_version": len(migrations._migrations),
    }
    assert PASSWORD not in first + output
    assert not (tmp_path / "x").exists()  # the SQLite file was not used
    checked = Storage.open(database)
    assert checked.active_versions()  # the bundled policy went into PostgreSQL
    checked.close()
    postgres_cluster.drop(database)


@pytest.mark.parametrize(
    ("given", "conninfo", "threshold"),
    [
        ("postgresql://u:p@db/x", "postgresql://u:p@db/x", 5),
        ("postgresql://u:p@db/x?sslmode=require", "postgresql://u:p@db/x?sslmode=require", 5),
        ("postgresql://u:p@db/x?prepare_threshold=off", "postgresql://u:p@db/x", None),
        (
            "postgresql://u:p@db/x?sslmode=require&prepare_threshold=0",
            "postgresql://u:p@db/x?sslmode=require",
            0,
        ),
    ],
)
def test_prepare_threshold_is_taken_out_of_the_url_for_psycopg(
    given: str, conninfo: str, threshold: int | None
) -> None:
    assert prepare_threshold_of(given) == (conninfo, threshold)


def test_a_prepare_threshold_that_is_no_number_is_refused_without_the_password() -> None:
    with pytest.raises(ValueError, match="prepare_threshold must be a whole number or off") as bad:
        Settings.from_env({"DATABASE_URL": f"postgresql://u:{PASSWORD}@db/x?prepare_threshold=x"})
    assert PASSWORD not in str(bad.value)


def prepared_statements(storage: Storage) -> int:
    row = storage.db.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    return int(row[0])


def test_statements_run_often_are_prepared_unless_the_url_says_off(
    postgres_cluster: Cluster,
) -> None:
    url = postgres_cluster.new_database()
    try:
        counts = {}
        for suffix in ("", "?prepare_threshold=off"):
            storage = Storage.open(url + suffix)
            try:
                for _ in range(8):
                    storage.questions(status=None)
                counts[suffix or "default"] = prepared_statements(storage)
            finally:
                storage.close()
    finally:
        postgres_cluster.drop(url)
    assert counts["default"] >= 1 and counts["?prepare_threshold=off"] == 0
    record(
        "PostgreSQL: statements prepared on the server",
        "pytest tests/test_storage_engines.py -k prepared",
        prepared_by_default=counts["default"],
        prepared_with_off=counts["?prepare_threshold=off"],
    )
