"""`policybot ARGS...` that SIGKILLs itself at the Nth SQL statement matching a pattern: a crash
in the middle of a policy upload, at a point the test chooses (no timing involved).

    python -m tests.fakes.killed_upload PATTERN N --db DB policy load FILE
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import sys
from typing import Any


def main() -> None:
    pattern, nth, *argv = sys.argv[1:]
    wanted = re.compile(pattern, re.IGNORECASE)
    seen = 0
    real_connect = sqlite3.connect

    def trace(sql: str) -> None:
        nonlocal seen
        if wanted.search(sql):
            seen += 1
            if seen == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        # sqlite3.connect is overloaded; passed through Any arguments it returns Any.
        connection: sqlite3.Connection = real_connect(*args, **kwargs)
        connection.set_trace_callback(trace)
        return connection

    # Replacing a module function with a wrapper of another signature (its overloads
    # collapsed to *args, **kwargs) is what this fake is for.
    sqlite3.connect = connect  # type: ignore[assignment]
    from bot.cli import main as policybot

    policybot(argv)


if __name__ == "__main__":
    main()
