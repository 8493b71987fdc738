"""An upload read in a child process with a memory limit and a deadline.

The readers bound what they can (unpacked sizes, pages, blocks, sections), but the parsers
underneath (lxml, pypdf, html.parser) can still take far more memory or time than a file's size
suggests. Read in a child process, no file can grow the server or stall it: the child's address
space is capped with RLIMIT_AS and it is killed at the deadline.

The child is a fresh `python -m bot.reading.upload_worker` (not a fork of the server, whose
threads and database connections a fork would copy). Starting it costs about 0.1 s for Markdown
and 0.3 s for DOCX or PDF (their libraries load), once per upload, an admin's action. Both
directions are JSON, not pickle: the child parses hostile files, so what it sends back is data,
never code.

    python -m bot.reading.upload_worker     # stdin: a JSON header line, then the file; stdout: JSON
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

from bot.child_call import child_environment
from bot.models import Clause, ParsedPolicy, PolicyError
from bot.reading.shared import ReadLimits

DEFAULT_READ_SECONDS = 60.0
DEFAULT_READ_MEMORY_MB = 1024
#: Uploads read at once; the others wait their turn, so a burst of uploads cannot take the
#: machine's memory (each child may use up to its memory limit).
CONCURRENT_READS = 2

_slots = threading.BoundedSemaphore(CONCURRENT_READS)


@dataclass(frozen=True)
class WorkerLimits:
    """How long and how much memory one upload's reading may take."""

    seconds: float = DEFAULT_READ_SECONDS
    memory_bytes: int = DEFAULT_READ_MEMORY_MB * 2**20


# -- the server's side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ReaderOutput:
    """What the reading child wrote and how it ended, not yet decoded: a server hands it on to
    the process that stores the upload, so a large policy's JSON is never decoded on a thread
    beside the event loop."""

    filename: str
    output: bytes
    returncode: int
    worker: WorkerLimits

    def policy(self) -> ParsedPolicy:
        """The policy read, or PolicyError with the uploader's message."""
        return _result(self.filename, self.output, self.worker, self.returncode)


def run_reader(
    filename: str,
    data: bytes,
    *,
    name: str | None = None,
    limits: ReadLimits | None = None,
    worker: WorkerLimits | None = None,
) -> ReaderOutput:
    """`read_policy` in a child process, run to its end; blocks the calling thread (a server
    calls it from a worker thread). Its output is decoded by `ReaderOutput.policy` (PolicyError
    with a message for the uploader when the file is refused, ran past the memory limit or
    killed its reader); PolicyError here when it could not be started or ran past the
    deadline."""
    limits = limits or ReadLimits()
    worker = worker or WorkerLimits()
    header = {
        "filename": filename,
        "name": name,
        "limits": asdict(limits),
        "memory_bytes": worker.memory_bytes,
    }
    with _slots:
        try:
            finished = subprocess.run(
                [sys.executable, "-m", "bot.reading.upload_worker"],
                input=json.dumps(header).encode() + b"\n" + data,
                capture_output=True,
                timeout=worker.seconds,
                env=child_environment(),
                check=False,
            )
        except subprocess.TimeoutExpired:  # run() has killed the child
            raise PolicyError(
                f"{filename} took longer than {worker.seconds:g} seconds to read, the limit for "
                "one upload, so it was stopped and nothing was stored. A real policy reads in a "
                "few seconds; if this one is real, split it into several documents."
            ) from None
        except OSError as error:
            raise PolicyError(f"The reader for {filename} could not be started: {error}") from None
    return ReaderOutput(filename, finished.stdout, finished.returncode, worker)


def _result(filename: str, output: bytes, worker: WorkerLimits, returncode: int) -> ParsedPolicy:
    megabytes = f"{worker.memory_bytes / 2**20:g}"
    try:
        outcome = json.loads(output)
        kind = outcome["outcome"]
    except (ValueError, TypeError, KeyError):
        raise PolicyError(
            f"Reading {filename} stopped unexpectedly (exit code {returncode}): it looks "
            f"damaged, or it needed more than the {megabytes} MB of memory one upload may use. "
            "Nothing was stored."
        ) from None
    if kind == "read":
        try:
            return _policy_from_json(outcome["policy"])
        except (ValueError, TypeError, KeyError):
            raise PolicyError(
                f"The reader sent back something unreadable for {filename}."
            ) from None
    if kind == "refused":
        raise PolicyError(str(outcome.get("message", "")))
    if kind == "memory":
        raise PolicyError(
            f"{filename} needed more than {megabytes} MB of memory to read, the limit for one "
            "upload, so it was stopped and nothing was stored. A real policy needs far less; if "
            "this one is real, split it into several documents."
        )
    raise PolicyError(
        f"{filename} cannot be read ({outcome.get('message', '')}); it looks damaged."
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


def _number(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected a number")
    return value


def _policy_from_json(policy: dict[str, Any]) -> ParsedPolicy:
    clauses = tuple(
        Clause(
            text=_text(c["text"]),
            section=_text(c["section"]),
            section_title=_text(c["section_title"]),
            heading_path=tuple(_text(h) for h in c["heading_path"]),
            owner=_text(c["owner"]),
            ordinal=_number(c["ordinal"]),
            line_start=_number(c["line_start"]),
            line_end=_number(c["line_end"]),
        )
        for c in policy["clauses"]
    )
    return ParsedPolicy(
        name=_text(policy["name"]),
        title=_text(policy["title"]),
        version_label=_text(policy["version_label"]),
        owners=tuple(_text(o) for o in policy["owners"]),
        clauses=clauses,
    )


# -- the child's side ----------------------------------------------------------------------------
def _address_space() -> int:
    """This process's mapped address space now (the interpreter and what it has imported)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _peak_address_space() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


#: A failure this close to the address-space ceiling is the memory limit's doing, whatever
#: the parser called it (lxml reports a failed allocation as "unknown error").
_NEAR_CEILING = 32 * 2**20


def _read(request: bytes) -> dict[str, Any]:
    from bot.reading.ingest import read_policy

    header, _, data = request.partition(b"\n")
    fields = json.loads(header)
    # The limit is on top of what the child already maps, so it means the same whatever the
    # interpreter takes; the readers' libraries load under it.
    ceiling = _address_space() + int(fields["memory_bytes"])
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit already holds
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    try:
        policy = read_policy(
            fields["filename"], data, name=fields["name"], limits=ReadLimits(**fields["limits"])
        )
    except MemoryError:
        return {"outcome": "memory"}
    except Exception as error:
        if _peak_address_space() >= ceiling - _NEAR_CEILING:
            return {"outcome": "memory"}
        if isinstance(error, PolicyError):
            return {"outcome": "refused", "message": str(error)}
        if isinstance(error, RecursionError):
            return {"outcome": "failed", "message": "its structure is nested too deeply"}
        # A reader bug: the uploader gets a message, the server lives.
        return {"outcome": "failed", "message": type(error).__name__}
    return {"outcome": "read", "policy": asdict(policy)}


def main() -> None:
    from bot.child_call import lower_priority

    lower_priority()
    try:
        outcome = _read(sys.stdin.buffer.read())
        reply = json.dumps(outcome).encode()
    except MemoryError:
        reply = b'{"outcome": "memory"}'
    sys.stdout.buffer.write(reply)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
