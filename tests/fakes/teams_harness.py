"""Driving `POST /api/messages` as Teams does, and reading the cards the bot sends back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import aiohttp

from bot.config import Settings


def local_teams(settings: Settings) -> Settings:
    """Teams as in local testing: no MicrosoftAppId, `/api/messages` served unauthenticated
    (POLICYBOT_TEAMS_UNAUTHENTICATED), which the server allows on loopback only, where the
    tests' servers listen (tests/fakes/loopback.py)."""
    return replace(settings, teams_unauthenticated=True)


async def post(
    base: str,
    body: object,  # any JSON value: the tests send malformed activities too
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            base + "/api/messages",
            json=None if raw is not None else body,
            data=raw,
            headers=headers,
        ) as response,
    ):
        return response.status, await response.text()


#: Seconds a test waits for the questions under way before it calls the server hung (a hang
#: guard only: a first question may embed the whole policy on a busy machine).
ANSWERING_GUARD = 60.0


async def turns_finished() -> None:
    """Until no message the server acknowledged (a question, a button, a file, a command) is
    still having its turn: `/api/messages` runs each after its acknowledgement, in a task of
    its own (`MessagesRoute.run_turn`)."""

    def answering() -> bool:
        return any(
            getattr(task.get_coro(), "__qualname__", "") == "MessagesRoute.run_turn"
            for task in asyncio.all_tasks()
            if not task.done()
        )

    deadline = time.monotonic() + ANSWERING_GUARD
    while answering():
        assert time.monotonic() < deadline, "an acknowledged question was never answered"
        await asyncio.sleep(0.01)


def submit_data(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each button's title and submit data; a button that opens a card (a confirmation)
    stands for the submit inside it."""
    found: dict[str, dict[str, Any]] = {}
    for action in card.get("actions", []):
        if action["type"] == "Action.ShowCard":
            (inner,) = submit_data(action["card"]).values()
            found[action["title"]] = inner
        else:
            found[action["title"]] = action["data"]
    return found


def card_text(card: dict[str, Any]) -> str:
    """Every literal text run in a card, in order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextRun":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card.get("body", []))
    return "\n".join(found)


async def post_turn(base: str, body: object, **options: Any) -> tuple[int, str]:
    """`post`, then until its turn (and any other under way) has run: for a test whose next
    step needs this one's replies first, as a person waits for the bot before the next click."""
    sent = await post(base, body, **options)
    await turns_finished()
    return sent
