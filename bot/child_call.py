"""One call run in a fresh interpreter below the server's priority (`bot.worker.in_child_process`).

    python -m bot.child_call    # stdin: the caller's sys.path as a JSON line, then the pickled
                                # (call, args); stdout: the pickled (returned, value)

The priority is lowered first, before anything the call needs is imported: importing the
core takes most of a second of processor time, and it must not be taken from the server's
acknowledgements. Both sides are this project's code, so the call and its result travel
pickled; the file an admin uploaded reaches this process already read, as data.
"""

from __future__ import annotations

import contextlib
import os
import sys

#: How much lower than the server a child doing an admin's background work runs (nice): on a
#: busy machine the server's acknowledgements and answers get the processor first.
CHILD_NICENESS = 10


def child_environment() -> dict[str, str]:
    """This process's environment, with `bot` importable from where this one imports it,
    whatever the child's working folder (`python -m bot.child_call`, the upload reader)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def lower_priority() -> None:
    """This process below the server, for a child's work (this module, the upload reader)."""
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICENESS)


def main() -> None:
    lower_priority()
    import json
    import pickle

    stdin = sys.stdin.buffer
    sys.path[:] = json.loads(stdin.readline())
    try:
        call, args = pickle.loads(stdin.read())
        reply = pickle.dumps((True, call(*args)))
    except Exception as error:  # the caller re-raises it
        try:
            reply = pickle.dumps((False, error))
        except Exception:  # an exception that cannot be pickled: what it said, at least
            reply = pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
    sys.stdout.buffer.write(reply)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
