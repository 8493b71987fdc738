from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.core import PolicyBot
from bot.storage import Storage
from tests.fakes.openai_stub import OpenAIStub

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_POLICY = ROOT / "policies" / "social-media-and-electronic-communication.md"


@pytest.fixture(autouse=True)
def lexical_retriever(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the default lexical path even where the semantic extra is installed, so
    results do not depend on the machine; the semantic tests choose it explicitly."""
    monkeypatch.setenv("POLICYBOT_RETRIEVER", "lexical")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db_path=str(tmp_path / "policybot.db"), retriever="lexical")


@pytest.fixture
def bot(settings: Settings) -> Iterator[PolicyBot]:
    """A core on an in-memory database with the bundled policy active."""
    policy_bot = PolicyBot.create(settings, storage=Storage.memory())
    policy_bot.ensure_policy()
    yield policy_bot
    policy_bot.storage.close()


@pytest.fixture
def llm_stub() -> Iterator[OpenAIStub]:
    """An OpenAI-compatible stub server on loopback; tests script its replies."""
    with OpenAIStub() as stub:
        yield stub
