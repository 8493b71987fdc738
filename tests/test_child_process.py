"""`bot.worker.in_child_process`: a call in a spawned interpreter, below the server's priority."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.child_call import CHILD_NICENESS
from bot.worker import ChildProcessDied, in_child_process

ROOT = Path(__file__).resolve().parents[1]


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


def test_a_child_does_not_run_the_servers_main_module_again(tmp_path: Path) -> None:
    # `policybot serve`'s main module imports the whole CLI (most of a second of processor);
    # a child that ran it again would do so before it could lower its priority.
    runs = tmp_path / "runs"
    script = tmp_path / "server_main.py"
    script.write_text(
        "import asyncio, os, sys\n"
        f"with open({str(runs)!r}, 'a') as runs:\n"
        "    runs.write(__name__ + '\\n')\n"
        "if __name__ == '__main__':\n"
        "    from bot.worker import in_child_process\n"
        "    print(asyncio.run(in_child_process(os.getpid)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    finished = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, check=True
    )
    assert int(finished.stdout) > 0
    assert runs.read_text().split() == ["__main__"]
