"""The Chat Completions client against a stub server on loopback: requests, retries, failures."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TypedDict, Unpack

import httpx
import pytest

from adapters.loops import LoopThread
from bot.answering.llm import ChatClient, LLMConfig, LLMError, retry_after
from bot.config import ConfigError, Settings
from tests.fakes.openai_stub import HANG, OpenAIStub, Reply, completion, error

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


class ConfigChanges(TypedDict, total=False):
    """What a test changes in `config`'s LLMConfig."""

    api_key: str
    timeout: float
    retries: int
    max_retry_after: float


def config(stub: OpenAIStub, **overrides: Unpack[ConfigChanges]) -> LLMConfig:
    defaults = LLMConfig(
        base_url=stub.url,
        model="stub-model",
        api_key="sk-test-key",
        timeout=5.0,  # generous: only the hanging-server tests wait for a timeout
        retries=2,
        backoff=0.01,
    )
    return replace(defaults, **overrides)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_request_carries_model_messages_auth_and_json_mode(
    llm_stub: OpenAIStub, http: httpx.AsyncClient
) -> None:
    llm_stub.script(completion("hi there", prompt_tokens=12, completion_tokens=3))
    result = await ChatClient(config(llm_stub), http).complete(MESSAGES, budget=5)
    assert result.content == "hi there"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 3)
    assert result.usage.attempts == 1 and result.usage.latency_ms >= 0
    assert result.usage.model == "stub-model"
    (request,) = llm_stub.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.body["model"] == "stub-model"
    assert request.body["messages"] == MESSAGES
    assert request.body["response_format"] == {"type": "json_object"}


async def test_no_key_sends_no_authorization(llm_stub: OpenAIStub, http: httpx.AsyncClient) -> None:
    llm_stub.script(completion("ok"))
    await ChatClient(config(llm_stub, api_key=""), http).complete(MESSAGES, budget=5)
    assert "authorization" not in llm_stub.requests[0].headers


async def test_server_errors_are_retried_then_succeed(
    llm_stub: OpenAIStub, http: httpx.AsyncClient
) -> None:
    llm_stub.script(error(500), error(503), completion("third time"))
    result = await ChatClient(config(llm_stub), http).complete(MESSAGES, budget=5)
    assert result.content == "third time" and result.usage.attempts == 3
    assert len(llm_stub.requests) == 3


async def test_retries_are_bounded(llm_stub: OpenAIStub, http: httpx.AsyncClient) -> None:
    llm_stub.script(error(500), error(502), error(500), completion("too late"))
    with pytest.raises(LLMError, match=r"HTTP 500 \(after 3 attempts\)") as caught:
        await ChatClient(config(llm_stub, retries=2), http).complete(MESSAGES, budget=5)
    assert caught.value.usage.attempts == 3
    assert len(llm_stub.requests) == 3 and llm_stub.unused == 1


async def test_429_honours_retry_after(llm_stub: OpenAIStub, http: httpx.AsyncClient) -> None:
    llm_stub.script(error(429, "slow down", **{"Retry-After": "0"}), completion("after the wait"))
    result = await ChatClient(config(llm_stub), http).complete(MESSAGES, budget=5)
    assert result.content == "after the wait" and result.usage.attempts == 2


async def test_429_asking_for_longer_than_the_budget_gives_up_at_once(
    llm_stub: OpenAIStub, http: httpx.AsyncClient
) -> None:
    llm_stub.script(error(429, "slow down", **{"Retry-After": "3600"}), completion("never"))
    client = ChatClient(config(llm_stub, max_retry_after=10), http)
    with pytest.raises(LLMError, match=r"rate limited.*would pass the time budget"):
        await client.complete(MESSAGES, budget=2)
    assert len(llm_stub.requests) == 1


async def test_a_hang_times_out(llm_stub: OpenAIStub, http: httpx.AsyncClient) -> None:
    llm_stub.script(HANG, completion("never sent"))
    with pytest.raises(LLMError, match="did not reply within") as caught:
        await ChatClient(config(llm_stub, timeout=0.2), http).complete(MESSAGES, budget=5)
    # A slow server is not asked again: a second wait would likely be as long.
    assert len(llm_stub.requests) == 1 and caught.value.usage.attempts == 1


async def test_the_budget_caps_the_request_timeout(
    llm_stub: OpenAIStub, http: httpx.AsyncClient
) -> None:
    llm_stub.script(HANG)
    with pytest.raises(LLMError, match=r"did not reply within 0.1s"):
        await ChatClient(config(llm_stub, timeout=30), http).complete(MESSAGES, budget=0.1)


async def test_refused_connection_is_retried_then_reported(http: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    cfg = LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", retries=1, backoff=0.01)
    with pytest.raises(LLMError, match="cannot connect") as caught:
        await ChatClient(cfg, http).complete(MESSAGES, budget=5)
    assert caught.value.usage.attempts == 2


async def test_a_server_rejecting_json_mode_is_asked_plainly_from_then_on(
    llm_stub: OpenAIStub, http: httpx.AsyncClient
) -> None:
    llm_stub.script(
        error(400, "response_format is not supported"), completion("plain"), completion("again")
    )
    client = ChatClient(config(llm_stub), http)
    assert (await client.complete(MESSAGES, budget=5)).content == "plain"
    assert (await client.complete(MESSAGES, budget=5)).content == "again"
    first, second, third = llm_stub.requests
    assert "response_format" in first.body
    assert "response_format" not in second.body and "temperature" not in second.body
    assert "response_format" not in third.body


async def test_client_errors_are_not_retried(llm_stub: OpenAIStub, http: httpx.AsyncClient) -> None:
    llm_stub.script(error(401, "invalid api key"), completion("never"))
    with pytest.raises(LLMError, match=r"HTTP 401.*invalid api key"):
        await ChatClient(config(llm_stub), http).complete(MESSAGES, budget=5)
    assert len(llm_stub.requests) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (completion(None), "reply is empty"),
        (completion("   "), "reply is empty"),
        (Reply(body=b"<html>oops</html>"), "not JSON"),
        (Reply(body=b"[1, 2]"), "not a JSON object"),
        (Reply(body=b'{"choices": []}'), "no choices"),
    ],
)
async def test_malformed_responses_are_errors(
    llm_stub: OpenAIStub, http: httpx.AsyncClient, reply: Reply, reason: str
) -> None:
    llm_stub.script(reply)
    with pytest.raises(LLMError, match=reason):
        await ChatClient(config(llm_stub), http).complete(MESSAGES, budget=5)


async def test_a_refusal_is_an_error(http: httpx.AsyncClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        return httpx.Response(200, json={"choices": [{"message": message}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mocked:
        cfg = LLMConfig(base_url="http://llm.invalid/v1", model="m")
        with pytest.raises(LLMError, match="refused: I can't help"):
            await ChatClient(cfg, mocked).complete(MESSAGES, budget=5)


async def test_without_an_injected_client_it_owns_and_closes_one(llm_stub: OpenAIStub) -> None:
    llm_stub.script(completion("owned"))
    client = ChatClient(config(llm_stub))
    assert (await client.complete(MESSAGES, budget=5)).content == "owned"
    await client.aclose()
    await client.aclose()  # twice is harmless


async def test_each_loop_asking_keeps_its_own_connection_and_closes_its_own(
    llm_stub: OpenAIStub,
) -> None:
    # The server's loop and the one answering Slack's questions share one client: each loop's
    # requests go over a kept-alive connection of its own (a client per loop), and one
    # loop's close leaves the other's working.
    llm_stub.script(*(completion(f"reply {n}") for n in range(5)))
    client = ChatClient(config(llm_stub))
    other = LoopThread("test-other-loop")
    other.start()
    try:
        for _ in range(2):
            await client.complete(MESSAGES, budget=5)
            await other.run(client.complete(MESSAGES, budget=5))
        await client.aclose()
        assert (await other.run(client.complete(MESSAGES, budget=5))).content == "reply 4"
        await other.run(client.aclose())
    finally:
        await other.stop()
    here, there = ({r.peer for r in llm_stub.requests[n:4:2]} for n in (0, 1))
    assert len(here) == 1 and len(there) == 1 and here != there
    assert llm_stub.requests[4].peer in there


def test_retry_after_forms() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "2"})) == 2
    assert retry_after(httpx.Headers({"retry-after-ms": "250", "Retry-After": "9"})) == 0.25
    assert retry_after(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    assert retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after(httpx.Headers({})) is None


def test_settings_read_the_llm_variables() -> None:
    settings = Settings.from_env(
        {
            "OPENAI_BASE_URL": "http://localhost:11434/v1",
            "POLICYBOT_LLM_MODEL": "llama3.1",
            "POLICYBOT_LLM_TIMEOUT": "3",
            "POLICYBOT_LLM_RETRIES": "1",
            "POLICYBOT_LLM_BUDGET": "9",
        }
    )
    assert settings.llm_configured
    cfg = LLMConfig.from_settings(settings)
    assert cfg.endpoint == "http://localhost:11434/v1/chat/completions"
    assert (cfg.timeout, cfg.retries, settings.llm_budget) == (3, 1, 9)
    assert not Settings.from_env({"OPENAI_BASE_URL": "http://x/v1"}).llm_configured
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL is not"):
        Settings.from_env({"POLICYBOT_LLM_MODEL": "gpt-4o-mini"})
    with pytest.raises(ConfigError, match="http"):
        Settings.from_env({"OPENAI_BASE_URL": "localhost:11434", "POLICYBOT_LLM_MODEL": "m"})
    with pytest.raises(ConfigError, match="RETRIES"):
        Settings.from_env({"POLICYBOT_LLM_RETRIES": "50"})
