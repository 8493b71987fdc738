"""`bot.worker.in_child_process`: a call in a spawned interpreter, below the server's priority."""

from __future__ import annotations

import os

import pytest

from bot.worker import CHILD_NICENESS, ChildProcessDied, in_child_process


def _niceness() -> int:
    return os.nice(0)


def _dies() -> None:
    os._exit(3)


def _refuses() -> None:
    raise ValueError("refused in the child")


async def test_a_child_runs_below_the_server() -> None:
    assert await in_child_process(_niceness) == min(19, os.nice(0) + CHILD_NICENESS)
    assert await in_child_process(os.getpid) != os.getpid()


async def test_what_a_child_raises_arrives_and_a_child_that_dies_is_said_to_have_died() -> None:
    with pytest.raises(ValueError, match="refused in the child"):
        await in_child_process(_refuses)
    with pytest.raises(ChildProcessDied, match="_dies"):
        await in_child_process(_dies)
