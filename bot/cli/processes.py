"""`policybot serve --processes N`: N servers on one port, for a machine with N cores.

One Python process answers with one core at a time (its GIL): measured here, its event loop
alone spends ~4 ms of processor per Slack event (bolt, aiohttp, the Web API calls), so one
process acknowledges and answers ~110-140 events/s and, past that, its acknowledgements queue
behind its answers. Each of N processes here is a whole `policybot serve` (its own worker,
spool, process mark and background tasks) binding the same port with SO_REUSEPORT, so the
kernel spreads connections over them; they share the database as replicas do (a delivery
taken once across processes, reviewed answers claimed row by row, the digest posted once).

The supervisor itself serves nothing: it migrates the database once (so N processes never
migrate at once), starts the N, passes SIGTERM and SIGINT on, and when any one ends stops
the others and exits with its code, for the platform or systemd to restart the whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

#: How long the others get to finish their requests once one has ended.
STOP_SECONDS = 10.0


def serve_command(db_path: str | None, host: str, port: int) -> list[str]:
    """One of the N: `policybot serve` on the shared port."""
    database = ["--db", db_path] if db_path else []
    served = ["--host", host, "--port", str(port), "--processes", "1", "--reuse-port"]
    return [sys.executable, "-m", "bot.cli", *database, "serve", *served]


def supervise(commands: Sequence[Sequence[str]]) -> int:
    """Run `commands` until one ends; its exit code (128 + the signal for a killed one)."""
    children = [subprocess.Popen(list(command)) for command in commands]

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ended_pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        for child in children:
            if child.pid == ended_pid:
                child.returncode = code  # reaped by os.wait: Popen must not wait for it again
            elif child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if code >= 0 else 128 - code
