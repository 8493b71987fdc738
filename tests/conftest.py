from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.config import Settings
from bot.core import PolicyBot
from bot.store.database import Storage
from tests.browser import BrowserMissing, headless_chromium
from tests.fakes.bot_connector import ConnectorStub, connector_stub
from tests.fakes.openai_stub import OpenAIStub
from tests.fakes.slack_harness import SlackHarness, slack_server
from tests.postgres import SKIP_VARIABLE, Cluster, PostgresMissing, running_cluster, server_binaries

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_POLICY = ROOT / "policies" / "social-media-and-electronic-communication.md"


@pytest.fixture(autouse=True)
def lexical_retriever(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the default lexical path even where the semantic extra is installed, so
    results do not depend on the machine; the semantic tests choose it explicitly."""
    monkeypatch.setenv("POLICYBOT_RETRIEVER", "lexical")


@pytest.fixture(autouse=True)
def no_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers here take milliseconds: a long delay keeps "Thinking…" out of every conversation
    but those of the tests about it, which set their own."""
    monkeypatch.setattr("adapters.replies.THINKING_DELAY", 60.0)


# -- the two engines ----------------------------------------------------------------------------
#: What the storage-level tests run on: each such test runs once per engine.
ENGINES = ("sqlite", "postgresql")
#: How a skip for want of PostgreSQL or Chromium begins: the run's summary looks for it among
#: the skipped tests' reports (each xdist worker skips on its own; the summary is the main
#: process's).
POSTGRES_SKIPPED = f"PostgreSQL tests SKIPPED ({SKIP_VARIABLE}=1): "
BROWSER_SKIPPED = "Browser tests SKIPPED: "


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the session (tests/postgres.py), started the first
    time a test asks for PostgreSQL. Without server binaries the run fails and says how to
    install them, unless POLICYBOT_TEST_SKIP_POSTGRES=1 asks to skip (said in the summary)."""
    try:
        server_binaries()
    except PostgresMissing as missing:
        if os.environ.get(SKIP_VARIABLE, "").strip() == "1":
            pytest.skip(f"{POSTGRES_SKIPPED}{missing}")
        pytest.fail(str(missing), pytrace=False)
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a storage-level test runs on (once each)."""
    return str(request.param)


@pytest.fixture
def database_location(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Where a test's own database lives on its engine: a SQLite file (not yet created), or a
    fresh, migrated PostgreSQL database, dropped after the test."""
    if engine == "sqlite":
        yield str(tmp_path / "bot.db")
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.new_database()
    yield url
    cluster.drop(url)


@pytest.fixture
def new_storage(engine: str, request: pytest.FixtureRequest) -> Iterator[Callable[[], Storage]]:
    """`new_storage()`: an empty, migrated store of its own on the test's engine (SQLite in
    memory, or a fresh PostgreSQL database), closed (and dropped) after the test."""
    made: list[tuple[Storage, str]] = []

    def make() -> Storage:
        if engine == "sqlite":
            storage = Storage.memory()
            made.append((storage, ""))
            return storage
        cluster: Cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.new_database()
        storage = Storage.open(url)
        made.append((storage, url))
        return storage

    yield make
    for storage, url in made:
        storage.close()
        if url:
            request.getfixturevalue("postgres_cluster").drop(url)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db_path=str(tmp_path / "policybot.db"), retriever="lexical")


@pytest.fixture
def bot_with(settings: Settings) -> Iterator[Callable[..., PolicyBot]]:
    """`bot_with(admins=("U1",), ...)`: a core with those settings on an in-memory database
    with the bundled policy active, closed after the test."""
    made: list[PolicyBot] = []

    def make(**options: Any) -> PolicyBot:
        policy_bot = PolicyBot.create(replace(settings, **options), storage=Storage.memory())
        policy_bot.ensure_policy()
        made.append(policy_bot)
        return policy_bot

    yield make
    for policy_bot in made:
        policy_bot.storage.close()


@pytest.fixture
def bot(bot_with: Callable[..., PolicyBot]) -> PolicyBot:
    """A core on an in-memory database with the bundled policy active."""
    return bot_with()


#: Two versions of one document: the newer drops the section on phones for one on livestreams.
PHONES_POLICY = """# Devices policy

## 1. Phones

Employees may read work email on a personal phone only with the device management app installed.
"""
LIVESTREAM_POLICY = """# Devices policy

## 1. Livestreaming

Employees must not livestream video from any warehouse without written approval from Public Relations.
"""


@pytest.fixture
def reworded_bot(settings: Settings) -> Iterator[PolicyBot]:
    """A core whose active version (livestreams) no longer says what the retired one did
    (phones); `policies.rollback("devices")` brings the phones back."""
    policy_bot = PolicyBot.create(settings, storage=Storage.memory())
    for text in (PHONES_POLICY, LIVESTREAM_POLICY):
        policy_bot.policies.upload("devices.md", text.encode(), activate=True)
    yield policy_bot
    policy_bot.storage.close()


@pytest.fixture
def llm_stub() -> Iterator[OpenAIStub]:
    """An OpenAI-compatible stub server on loopback; tests script its replies."""
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture
def cli_env() -> dict[str, str]:
    """The environment `run` gives the CLI; a module overrides it (to add an LLM, say)."""
    return {"POLICYBOT_DB": ""}


class RunCli(Protocol):
    """What the `run` fixture gives a test."""

    def __call__(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> Result: ...


@pytest.fixture
def run(tmp_path: Path, cli_env: dict[str, str]) -> RunCli:
    """`run("ask", "--json", "...")`: the policybot command on a database of its own; `env`
    adds to `cli_env` for one call."""
    db = str(tmp_path / "cli.db")

    def invoke(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
        environment = {**cli_env, **(env or {})}
        return CliRunner().invoke(main, ["--db", db, *args], input=stdin, env=environment)

    return invoke


@pytest.fixture
def slack_options() -> dict[str, Any]:
    """Settings the `slack` fixture's server runs with; a module overrides it for its own."""
    return {}


@pytest.fixture
async def slack(settings: Settings, slack_options: dict[str, Any]) -> AsyncIterator[SlackHarness]:
    """`policybot serve` with Slack configured, against a fake Slack Web API (both on loopback)."""
    async with slack_server(settings, **slack_options) as harness:
        yield harness


@pytest.fixture
async def stub() -> AsyncIterator[ConnectorStub]:
    """A Bot Framework connector on loopback that records what the Teams bot sends."""
    async with connector_stub() as connector:
        yield connector


# -- reliability figures (see tests/reliability.py and docs/reliability.md) ---------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-report",
        default="",
        help="write the reliability checks' figures and every test's outcome to this JSON file",
    )


_OUTCOMES: dict[str, dict[str, object]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        entry = _OUTCOMES.setdefault(report.nodeid, {"outcome": "passed"})
        if report.outcome != "passed":
            entry["outcome"] = report.outcome


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hypothesis tests carry their settings: the report states how many inputs each may try.
    for item in items:
        function = getattr(item, "obj", None)
        chosen = getattr(function, "_hypothesis_internal_use_settings", None)
        if chosen is not None:
            _OUTCOMES.setdefault(item.nodeid, {"outcome": "passed"})["max_examples"] = (
                chosen.max_examples
            )


# -- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium (Selenium WebDriver) for the session's browser tests; skipped, and
    said in the run's summary, where Chromium and ChromeDriver are not installed."""
    try:
        with headless_chromium() as session:
            yield session
    except BrowserMissing as missing:
        pytest.skip(f"{BROWSER_SKIPPED}{missing}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reasons = [
        str(report.longrepr[2])
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3
    ]
    for beginning in (BROWSER_SKIPPED, POSTGRES_SKIPPED):
        said = next((reason for reason in reasons if beginning in reason), None)
        if said is not None:
            terminalreporter.write_line(beginning + said.split(beginning, 1)[1], red=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--reliability-report")
    if not path:
        return
    import dataclasses
    import json

    from tests.reliability import FIGURES

    ran = {k: v for k, v in _OUTCOMES.items() if "outcome" in v and k in _RAN}
    Path(path).write_text(
        json.dumps({"figures": [dataclasses.asdict(f) for f in FIGURES], "tests": ran}, indent=2)
    )


_RAN: set[str] = set()


def pytest_runtest_logstart(nodeid: str) -> None:
    _RAN.add(nodeid)
