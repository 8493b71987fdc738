"""Policy versions: every upload path (CLI, HTTP, Slack, Teams) comes through here.

upload -> a staged version (or the one already stored with the same content) and what it
changes against the active version -> activate (or discard). Activation is one transaction;
afterwards the open questions the policy did not answer are run again, and those the new
policy answers are flagged for the policy team. Rollback replays the activation log.

Over 400 lines because `PolicyLibrary` is the one path every upload takes, and its results
(`UploadResult`, `Activation`, `Retirement`) are what each surface renders; what stands alone
lives beside it: reading files (bot.reading), comparing versions (bot.changes), SQL (bot.store).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import access, messages
from bot.answering.extractive import select_citations
from bot.answering.outcome import Outcome, outcome_of
from bot.changes import ChangeSummary, compare_clauses
from bot.config import DEFAULT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_CONFIDENCE
from bot.models import Actor, ParsedPolicy, PolicyError
from bot.reading.ingest import READERS, read_file, read_policy
from bot.reading.shared import ReadLimits
from bot.reading.upload_worker import ReaderOutput, WorkerLimits, run_reader
from bot.retrieval.active import ActivePolicy
from bot.retrieval.lexical import LexicalRetriever, Retriever
from bot.store.database import Storage, VersionInfo, content_hash
from bot.worker import ChildProcessDied, Worker, blocking, in_child_process

#: Re-exported for the adapters and tests that import them from here (next round: from
#: bot.messages and bot.access).
ADMIN_ONLY = messages.ADMIN_ONLY
NotAuthorized = access.NotAuthorized
is_admin = access.is_admin

#: What an admin can do with an uploaded version from the message showing its changes.
ACTIVATE = "activate"
DISCARD = "discard"
#: Takes the version's document out of answering (a "Retire" button beside those two).
RETIRE = "retire"
STALE_VERSION = messages.STALE_VERSION


too_large = messages.too_large


#: The longest file name an upload may have, in UTF-8 bytes (what common file systems allow).
MAX_FILENAME_BYTES = 255
#: Characters that reorder how a name is displayed: "policy\u202etxt.md" shows as a .txt file.
BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown_filename(name: str) -> str:
    """A file name as a message may quote it: one printable line, cut."""
    printable = "".join(c if c.isprintable() and c not in BIDI_CONTROLS else "?" for c in name)
    return printable if len(printable) <= 80 else printable[:79] + "…"


def upload_filename(given: str) -> str:
    """The name an upload is stored under (it tells the format and names the document), or
    PolicyError saying what is wrong with it. A name is never a path here: one with a folder is
    refused rather than cut, so what is stored is what the uploader sent."""
    name = given.strip()
    if not name:
        raise PolicyError(messages.NO_FILENAME)
    shown = shown_filename(name)
    if any(unicodedata.category(c) in {"Cc", "Cs"} or c in BIDI_CONTROLS for c in name):
        raise PolicyError(
            f"{shown}: the file name contains control characters (or bytes that are not "
            "UTF-8); rename the file and upload it again."
        )
    if "/" in name or "\\" in name:
        raise PolicyError(f"{shown}: give the file's own name, without a folder ('/' or '\\').")
    if not name.strip("."):
        raise PolicyError(f"{shown} is not a file name; the name tells the file's format.")
    if len(name.encode()) > MAX_FILENAME_BYTES:
        raise PolicyError(
            f"{shown}: the file name is longer than {MAX_FILENAME_BYTES} bytes; rename the file."
        )
    return name


class NotFound(PolicyError):
    """No such policy version or document."""


#: A version as an admin types it: "gitlab-policy v3" (as every text shows it) or
#: "gitlab-policy@3"; a number alone is the version's id, as before.
_VERSION_REFERENCE = re.compile(r"^(?P<document>\S.*?)(?:\s*@\s*|\s+v)(?P<number>\d{1,9})$", re.I)
#: Digits an id may have: SQLite's integers end at 2**63 - 1 (19 digits, not all of them).
MAX_ID_DIGITS = 18
#: How an admin may name a version, for the messages that ask for one.
VERSION_FORMS = "DOCUMENT vN (as `policy list` shows it), DOCUMENT@N, or the version's id"


def names_a_version(typed: str) -> bool:
    """Whether text an admin typed is in a version's form (an id, DOCUMENT vN, DOCUMENT@N)
    rather than a document's name."""
    typed = " ".join(typed.split())
    return typed.isdigit() or _VERSION_REFERENCE.match(typed) is not None


def version_reference(version: VersionInfo) -> str:
    """The form of a version an admin can type into any command: "gitlab-policy@3"."""
    return f"{version.document}@{version.number or version.id}"


# -- what changed ------------------------------------------------------------------------------
# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    version: VersionInfo
    previous: VersionInfo | None  # the version that was active before; None if none was
    #: Open unanswered questions run again, and those the active policy now answers.
    rechecked: int = 0
    now_answered: tuple[int, ...] = ()
    #: The bundled example's versions this activation retired (the first real policy).
    retired_examples: tuple[VersionInfo, ...] = ()
    #: Open unanswered questions being re-checked in the background (a server's worker),
    #: instead of before this returned; None when they were re-checked here.
    rechecking: int | None = None

    @property
    def changed(self) -> bool:
        return self.previous is None or self.previous.id != self.version.id

    def as_text(self) -> str:
        if not self.changed:
            return f"{self.version.display} was already active; nothing changed."
        before = f" (was {self.previous.display})" if self.previous else ""
        text = f"{self.version.display} is now active{before}."
        if self.retired_examples:
            text += " " + messages.example_retired(
                [(v.display, v.reference) for v in self.retired_examples]
            )
        if self.rechecking:
            text += " " + messages.rechecking_in_background(self.rechecking)
        elif self.rechecked:
            text += (
                f" Re-checked {self.rechecked} open unanswered question(s): "
                f"{len(self.now_answered)} now answered by the policy"
            )
            ids = ", ".join(f"#{q}" for q in self.now_answered)
            text += f" ({ids})." if ids else "."
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "version": version_json(self.version),
            "previous": self.previous.id if self.previous else None,
            "changed": self.changed,
            "rechecked": self.rechecked,
            "now_answered": list(self.now_answered),
            "rechecking_in_background": self.rechecking or 0,
            "retired_examples": [v.id for v in self.retired_examples],
        }


@dataclass(frozen=True)
class ParsedUpload:
    """An upload read into clauses, not yet stored."""

    filename: str  # as `upload_filename` accepted it
    policy: ParsedPolicy


@dataclass(frozen=True)
class UploadResult:
    version: VersionInfo
    created: bool  # False when the same content was already stored as a version
    changes: ChangeSummary
    activation: Activation | None = field(default=None)
    #: Staged: the bundled example's versions that activating it will retire.
    replaces_examples: tuple[VersionInfo, ...] = ()

    @property
    def example_note(self) -> str:
        """For a staged upload that will replace the bundled example: the sentence saying so
        (every platform shows it with the change summary); "" otherwise."""
        if self.activation is not None or not self.replaces_examples:
            return ""
        return messages.example_will_be_retired([v.display for v in self.replaces_examples])

    def as_text(self, limit: int | None = None) -> str:
        source = self.version.source_name or "the upload"
        if self.created:
            head = (
                f"Read {self.version.clause_count} clauses from {source} as {self.version.display}."
            )
        else:
            head = f"{source} is already stored as {self.version.display}; no new version."
        parts = [head, self.changes.as_text(limit)]
        if self.activation is not None:
            parts.append(self.activation.as_text())
        elif self.version.status == "staged":
            parts.append(
                f"Staged, not active yet: `policybot policy activate "
                f"{version_reference(self.version)}` or `policybot policy discard "
                f"{version_reference(self.version)}`."
            )
            if self.example_note:
                parts.append(self.example_note)
        return "\n".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": version_json(self.version),
            "created": self.created,
            "changes": self.changes.as_json(),
            "activation": self.activation.as_json() if self.activation else None,
            "replaces_examples": [v.id for v in self.replaces_examples],
        }


@dataclass(frozen=True)
class Retirement:
    """A document taken out of answering: the version that was active (None: none was)."""

    document: str
    version: VersionInfo | None

    def as_text(self) -> str:
        if self.version is None:
            return messages.already_retired(self.document)
        return messages.document_retired(self.version.display, self.version.reference)

    def as_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "retired": version_json(self.version) if self.version else None,
        }


@dataclass(frozen=True)
class Settlement:
    """An uploaded version activated or discarded, and the sentence that says so."""

    version: VersionInfo
    outcome: str


def version_json(version: VersionInfo) -> dict[str, Any]:
    return {
        "id": version.id,
        "document": version.document,
        "number": version.number,
        "bundled": version.bundled,
        "title": version.title,
        "label": version.label,
        "status": version.status,
        "clauses": version.clause_count,
        "source_name": version.source_name,
        "content_hash": version.content_hash,
        "uploaded_by": version.uploaded_by,
        "uploaded_at": version.uploaded_at,
        "activated_at": version.activated_at,
    }


# -- the library -------------------------------------------------------------------------------
@contextmanager
def _named(filename: str) -> Iterator[None]:
    """A refusal from reading names the file it is about."""
    try:
        yield
    except PolicyError as error:
        message = str(error)
        raise PolicyError(message if filename in message else f"{filename}: {message}") from None


def parsed_upload(output: ReaderOutput) -> ParsedUpload:
    """The reading child's output decoded into the upload's clauses; PolicyError as reading
    would raise it."""
    with _named(output.filename):
        return ParsedUpload(output.filename, output.policy())


def _store_read_upload(
    location: Path | str,
    max_upload_bytes: int,
    output: ReaderOutput,
    data: bytes,
    uploaded_by: str,
    keep_example: bool,
) -> UploadResult:
    """`store_upload` of what the reading child wrote, on a connection of its own: what
    `upload_in_background` runs in a child process."""
    storage = Storage.open(location)
    try:
        library = PolicyLibrary(storage, max_upload_bytes, reading=output.worker)
        return library.store_upload(
            parsed_upload(output), data, uploaded_by=uploaded_by, keep_example=keep_example
        )
    finally:
        storage.close()


class PolicyLibrary:
    def __init__(
        self,
        storage: Storage,
        max_upload_bytes: int = 10 * 1024 * 1024,
        *,
        retriever: Retriever | None = None,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        uncertain_confidence: float = DEFAULT_UNCERTAIN_CONFIDENCE,
        max_citations: int = 3,
        admins: Sequence[str] = (),
        reading: WorkerLimits | None = None,
    ) -> None:
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes
        #: The deadline and memory limit of the child process that reads each upload; None
        #: reads in this process (with the same ceilings on size and counts, but no deadline).
        self.reading = reading
        self.retriever = retriever or LexicalRetriever(storage)
        self.min_confidence = min_confidence
        self.uncertain_confidence = uncertain_confidence
        #: A re-checked question keeps the clauses its answer would cite, as `ask` logs them.
        self.max_citations = max_citations
        self.admins = tuple(admins)
        #: Set by a server: starts re-checking the open questions in the background after an
        #: activation, a retirement or a rollback, returning how many it will re-check, or
        #: None when it cannot (no event loop), and they are re-checked before returning.
        self.recheck_later: Callable[[], int | None] | None = None

    # -- who may --------------------------------------------------------------------------------
    def is_admin(self, actor: Actor) -> bool:
        return access.is_admin(self.admins, actor)

    def authorize(self, actor: Actor, *, action: str = "policy change") -> None:
        """bot.access.authorize against this library's admins."""
        access.authorize(self.admins, actor, action=action)

    # -- upload ---------------------------------------------------------------------------------
    def upload(
        self,
        filename: str,
        data: bytes,
        *,
        uploaded_by: str = "",
        name: str | None = None,
        activate: bool = False,
        trusted: bool = False,
        keep_example: bool = False,
        bundled: bool = False,
    ) -> UploadResult:
        """Read and store a new staged version and say what it changes; optionally activate it
        (the first real policy retiring the bundled example, unless `keep_example`).

        Bad input raises PolicyError with a message for the uploader and changes nothing.
        """
        parsed = self.read_upload(filename, data, name=name, trusted=trusted)
        return self.store_upload(
            parsed,
            data,
            uploaded_by=uploaded_by,
            activate=activate,
            keep_example=keep_example,
            bundled=bundled,
        )

    async def upload_in_background(
        self,
        filename: str,
        data: bytes,
        *,
        uploaded_by: str = "",
        name: str | None = None,
        activate: bool = False,
        keep_example: bool = False,
        worker: Worker | None = None,
    ) -> UploadResult:
        """`upload` for a server: nothing slow runs on the event loop, so questions, health
        checks and platforms' acknowledgements are answered meanwhile. The file is read in a
        child process (see `bot.reading.upload_worker`), then stored and compared with the active
        version in a worker thread on a connection of its own (as `policybot policy load`
        beside the server would). Activating, when asked, runs in `worker` (the bot's, which
        owns this library's connection; the caller's thread without one): it re-checks open
        questions with this library's retriever."""
        if self.storage.location is not None and self.reading is not None:
            # Read in one child, stored and compared in another: a large policy is seconds of
            # Python (decoding, storing, comparing clause by clause) that on a thread would
            # take the processor from the event loop's acknowledgements.
            output = await asyncio.to_thread(self._run_reader, filename, data, name)
            try:
                stored = await in_child_process(
                    _store_read_upload,
                    self.storage.location,
                    self.max_upload_bytes,
                    output,
                    data,
                    uploaded_by,
                    keep_example,
                )
            except ChildProcessDied:
                raise PolicyError(
                    f"Storing {output.filename} stopped unexpectedly; nothing was stored and "
                    "the active policy is as it was."
                ) from None
            if not activate:
                return stored
            return await blocking(worker, self._activate_upload, stored, uploaded_by, keep_example)
        parsed = await asyncio.to_thread(self.read_upload, filename, data, name=name)
        if self.storage.location is None:
            # An in-memory database (tests, `chat`) is one connection, the worker's.
            stored = await blocking(
                worker,
                self.store_upload,
                parsed,
                data,
                uploaded_by=uploaded_by,
                keep_example=keep_example,
            )
        else:
            stored = await asyncio.to_thread(
                self._store_on_own_connection,
                self.storage.location,
                parsed,
                data,
                uploaded_by,
                keep_example,
            )
        if not activate:
            return stored
        return await blocking(worker, self._activate_upload, stored, uploaded_by, keep_example)

    def _activate_upload(
        self, stored: UploadResult, uploaded_by: str, keep_example: bool
    ) -> UploadResult:
        activation = self.activate(stored.version.id, by=uploaded_by, keep_example=keep_example)
        return self._activated(stored, activation)

    def _activated(self, stored: UploadResult, activation: Activation) -> UploadResult:
        """An upload's result once activated: its summary names both versions as they now
        are (the upload active, the one it replaced no longer)."""
        base = stored.changes.base
        changes = dataclasses.replace(
            stored.changes,
            target=activation.version,
            base=self.version(base.id) if base is not None else None,
        )
        return UploadResult(activation.version, stored.created, changes, activation)

    def _store_on_own_connection(
        self,
        location: Path | str,
        upload: ParsedUpload,
        data: bytes,
        uploaded_by: str,
        keep_example: bool,
    ) -> UploadResult:
        storage = Storage.open(location)
        try:
            library = PolicyLibrary(storage, self.max_upload_bytes, reading=self.reading)
            return library.store_upload(
                upload, data, uploaded_by=uploaded_by, keep_example=keep_example
            )
        finally:
            storage.close()

    def read_upload(
        self, filename: str, data: bytes, *, name: str | None = None, trusted: bool = False
    ) -> ParsedUpload:
        """Check and read an upload into clauses, in a child process with this library's
        deadline and memory limit unless the file is `trusted` (the bundled policy); touches
        no storage, so any thread may run it."""
        if self.reading is not None and not trusted:
            return parsed_upload(self._run_reader(filename, data, name))
        filename, limits = self._checked(filename, data)
        with _named(filename):
            return ParsedUpload(filename, read_policy(filename, data, name=name, limits=limits))

    def _run_reader(self, filename: str, data: bytes, name: str | None) -> ReaderOutput:
        """The reading child run on an upload (checked for size first), its output not yet
        decoded (`parsed_upload`)."""
        assert self.reading is not None
        filename, limits = self._checked(filename, data)
        with _named(filename):
            return run_reader(filename, data, name=name, limits=limits, worker=self.reading)

    def _checked(self, filename: str, data: bytes) -> tuple[str, ReadLimits]:
        """The upload's file name as stored, and the reading limits; PolicyError when it is
        over the size limit, before any of it is read."""
        filename = upload_filename(filename or "")
        if len(data) > self.max_upload_bytes:
            raise PolicyError(too_large(filename, self.max_upload_bytes))
        return filename, ReadLimits(upload_bytes=self.max_upload_bytes)

    def store_upload(
        self,
        upload: ParsedUpload,
        data: bytes,
        *,
        uploaded_by: str = "",
        activate: bool = False,
        keep_example: bool = False,
        bundled: bool = False,
    ) -> UploadResult:
        parsed = upload.policy
        digest = content_hash(data)
        existing = self.storage.find_version(parsed.name, digest)
        if existing is not None:
            version, created = existing, False
        else:
            # The same bytes under another file name would be a second live copy of a
            # document, every clause quoted twice: refused, naming the document it copies.
            elsewhere = self.storage.versions_with_content(digest)
            if elsewhere:
                copied = elsewhere[-1]
                raise PolicyError(
                    messages.duplicate_document(
                        upload.filename, copied.display, copied.status, copied.document
                    )
                )
            version_id = self.storage.add_version(
                parsed,
                source_name=upload.filename,
                digest=digest,
                uploaded_by=uploaded_by,
                bundled=bundled,
            )
            version, created = self.storage.version(version_id), True
        # What activating it would change: against the active version, whichever that is.
        changes = self.compare(version, self.active_version(version.document))
        stored = UploadResult(
            version,
            created,
            changes,
            replaces_examples=tuple(self._examples_replaced_by(version, keep_example)),
        )
        if not activate:
            return stored
        activation = self.activate(version.id, by=uploaded_by, keep_example=keep_example)
        return self._activated(stored, activation)

    def load_file(
        self,
        path: Path,
        *,
        uploaded_by: str = "",
        name: str | None = None,
        activate: bool = True,
        keep_example: bool = False,
    ) -> UploadResult:
        return self.upload(
            path.name,
            read_file(path),
            uploaded_by=uploaded_by,
            name=name,
            activate=activate,
            keep_example=keep_example,
        )

    def load_bundled(self, folder: Path) -> list[VersionInfo]:
        """Load and activate every policy file in a folder (the bundled default policy)."""
        files = (
            sorted(p for p in folder.iterdir() if p.suffix.lower() in READERS)
            if folder.is_dir()
            else []
        )
        if not files:
            raise PolicyError(f"No policy files found in {folder}.")
        # Shipped with the bot, so read in this process: no child to start for every test bot.
        return [
            self.upload(
                path.name,
                read_file(path),
                uploaded_by="bundled",
                activate=True,
                trusted=True,
                keep_example=True,
                bundled=True,
            ).version
            for path in files
        ]

    # -- looking ------------------------------------------------------------------------------
    def version(self, version_id: int) -> VersionInfo:
        try:
            return self.storage.version(version_id)
        except KeyError:
            raise NotFound(f"There is no policy version {version_id}.") from None

    def find_version(self, reference: int | str) -> VersionInfo:
        """The version an admin names: "gitlab-policy v3", "gitlab-policy@3", or its id (a
        number alone). NotFound saying what exists when nothing matches."""
        if isinstance(reference, int):
            return self.version(reference)
        typed = " ".join(reference.split())
        if typed.isdigit():
            digits = typed.lstrip("0") or "0"
            if len(digits) > MAX_ID_DIGITS:  # no such id, and too long for SQLite to look up
                raise NotFound(f"There is no policy version {digits[:MAX_ID_DIGITS]}….")
            return self.version(int(digits))
        match = _VERSION_REFERENCE.match(typed)
        if match is None:
            shown = shown_filename(typed)
            if self.storage.versions(typed):
                raise NotFound(
                    f"{shown} is a document; name one of its versions: {self._numbers_of(typed)}."
                )
            raise NotFound(f"{shown!r} names no policy version; give {VERSION_FORMS}.")
        document = self._document_as_stored(match.group("document").strip())
        number = int(match.group("number"))
        versions = self.storage.versions(document)
        if not versions:
            raise NotFound(f"There is no policy document named {shown_filename(document)!r}.")
        found = next((v for v in versions if v.number == number), None)
        if found is None:
            raise NotFound(
                f"{document} has no version v{number}; it has {self._numbers_of(document)}."
            )
        return found

    def _document_as_stored(self, typed: str) -> str:
        """A document's name as stored, from one typed in other capitals ("Acme v2")."""
        if self.storage.versions(typed):
            return typed
        names = {v.document for v in self.storage.versions()}
        alike = [name for name in names if name.casefold() == typed.casefold()]
        return alike[0] if len(alike) == 1 else typed

    def _numbers_of(self, document: str) -> str:
        return ", ".join(f"{document} v{v.number}" for v in self.storage.versions(document))

    def active_version(self, document: str) -> VersionInfo | None:
        return next((v for v in self.storage.active_versions() if v.document == document), None)

    def latest_staged(self) -> VersionInfo:
        staged = [v for v in self.storage.versions() if v.status == "staged"]
        if not staged:
            raise PolicyError("No version is staged; name the version to compare.")
        return max(staged, key=lambda v: v.id)

    def diff(self, version: int | str | None = None) -> ChangeSummary:
        """A version (see `find_version`) against its document's active one (the newest
        staged version by default).

        For the active version itself: against the version that was active before it.
        """
        target = self.latest_staged() if version is None else self.find_version(version)
        base = self.active_version(target.document)
        if base is not None and base.id == target.id:
            earlier = self._activation_stack(target.document)[:-1]
            base = self.version(earlier[-1]) if earlier else None
        return self.compare(target, base)

    def compare(self, target: VersionInfo, base: VersionInfo | None) -> ChangeSummary:
        new = [s.clause for s in self.storage.clauses([target.id])]
        old = [s.clause for s in self.storage.clauses([base.id])] if base else []
        added, removed, changed, unchanged = compare_clauses(old, new)
        return ChangeSummary(
            document=target.document,
            target=target,
            base=base,
            added=tuple(added),
            removed=tuple(removed),
            changed=tuple(changed),
            unchanged=unchanged,
        )

    def history(self, document: str | None = None) -> list[dict[str, Any]]:
        """Every version with its uploads and activations, for `policy history`."""
        versions = self.storage.versions(document)
        if document is not None and not versions:
            raise NotFound(f"There is no policy document named {document!r}.")
        out = []
        for name in dict.fromkeys(v.document for v in versions):
            for event in self.storage.activations(name):
                event["document"] = name
                out.append(event)
        return out

    # -- changing -------------------------------------------------------------------------------
    def activate(
        self,
        version: int | str,
        *,
        by: str = "",
        kind: str = "activate",
        keep_example: bool = False,
    ) -> Activation:
        """Make a version active (one transaction), then re-check the open questions. The
        first real policy activated where only the bundled example answers retires the
        example in that same transaction, unless `keep_example`. `version` as
        `find_version` takes it."""
        target = self.find_version(version)
        previous = self.active_version(target.document)
        if previous is not None and previous.id == target.id:
            return Activation(target, previous)
        examples = self._examples_replaced_by(target, keep_example)
        activated = self.storage.activate_version(
            target.id, by=by, kind=kind, retiring=[v.document for v in examples]
        )
        retired = tuple(self.version(v.id) for v in examples)
        later = self.recheck_later() if self.recheck_later is not None else None
        if later is not None:
            return Activation(activated, previous, 0, (), retired, rechecking=later)
        rechecked, now_answered = self.recheck_open_questions()
        return Activation(activated, previous, rechecked, tuple(now_answered), retired)

    def _examples_replaced_by(self, target: VersionInfo, keep_example: bool) -> list[VersionInfo]:
        """The bundled example's active versions that activating `target` retires: all of
        them, when nothing else is active and `target` is a real policy's version. Keyed on
        the mark `load_bundled` records, never on a title or an uploader's name."""
        if keep_example or target.bundled:
            return []
        active = self.storage.active_versions()
        if not active or not all(v.bundled for v in active):
            return []
        return [v for v in active if v.document != target.document]

    def retire(self, document: str, *, by: str = "") -> Retirement:
        """Take a document out of answering; recorded in its history, undone by activating
        any of its versions."""
        name = self._document_name(document)
        retired = self.storage.retire_document(name, by=by)
        if retired is not None and (self.recheck_later is None or self.recheck_later() is None):
            self.recheck_open_questions()
        return Retirement(name, retired)

    def rollback(self, document: str | None = None, *, by: str = "") -> Activation:
        """Back to the version that was active before the current one."""
        name = self._document_name(document)
        if self.active_version(name) is None:
            raise PolicyError(messages.rollback_retired(name))
        stack = self._activation_stack(name)
        if len(stack) < 2:
            raise PolicyError(f"{name} has no earlier active version to roll back to.")
        return self.activate(stack[-2], by=by, kind="rollback")

    def discard(self, reference: int | str) -> VersionInfo:
        """Delete a staged version (see `find_version`) that was never active; nothing else
        changes."""
        version = self.find_version(reference)
        try:
            self.storage.delete_staged_version(version.id)
        except ValueError:
            raise PolicyError(
                f"{version.display} is {version.status}; only a staged version that was never "
                "active can be discarded (earlier versions stay for rollback and the log)."
            ) from None
        return version

    def settle(self, version_id: int | None, action: str, actor: Actor) -> Settlement:
        """ACTIVATE or DISCARD an uploaded version from the buttons under its change summary,
        for every platform. Admins only, checked again at the click (a message can be
        forwarded). PolicyError with a message for the admin: not an admin, a stale button, a
        version that cannot be discarded."""
        self.authorize(actor, action=f"policy {action}")
        if version_id is None:
            raise NotFound(STALE_VERSION)
        if action == ACTIVATE:
            activation = self.activate(version_id, by=actor.recorded_as)
            return Settlement(activation.version, activation.as_text())
        if action == DISCARD:
            discarded = self.discard(version_id)
            return Settlement(discarded, messages.discarded(discarded.display))
        if action == RETIRE:
            retirement = self.retire(self.version(version_id).document, by=actor.recorded_as)
            return Settlement(retirement.version or self.version(version_id), retirement.as_text())
        raise PolicyError(messages.not_a_version_action(action))

    def recheck_open_questions(self) -> tuple[int, list[int]]:
        """Run the open unanswered questions (not covered or uncertain) against the active
        policy as `ask` would; flag those it now answers with confidence (and unflag those it
        no longer does, after a rollback). An uncertain outcome is no news for the policy
        team: the question was sent to them because its closest clauses might not answer it,
        and closest clauses that might not answer it are what they would see again."""
        open_questions = self.storage.open_unanswered_questions()
        return len(open_questions), self.recheck_questions(open_questions)

    def recheck_questions(self, questions: Sequence[tuple[int, str]]) -> list[int]:
        """`recheck_open_questions` for some of them ((id, text) each): the ids now answered."""
        active = ActivePolicy.read(self.storage, self.retriever)
        now_answered = []
        for question_id, text in questions:
            retrieval = active.retrieve(text)
            outcome = outcome_of(retrieval, self.min_confidence, self.uncertain_confidence)
            if outcome is Outcome.ANSWERED:
                best = retrieval.ranked[0].stored
                citations = [c.as_logged() for c in select_citations(retrieval, self.max_citations)]
                self.storage.mark_now_answered(
                    question_id, best.version_id, retrieval.confidence, citations
                )
                now_answered.append(question_id)
            else:
                self.storage.mark_now_answered(question_id, None)
        return now_answered

    # -- helpers --------------------------------------------------------------------------------
    def _document_name(self, document: str | None) -> str:
        names = list(dict.fromkeys(v.document for v in self.storage.versions()))
        if document is not None:
            if document not in names:
                raise NotFound(f"There is no policy document named {document!r}.")
            return document
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise PolicyError(f"Name the document (one of: {listed}).")
        return names[0]

    def _activation_stack(self, document: str) -> list[int]:
        """The activation log replayed: activating pushes a version, a rollback pops one."""
        stack: list[int] = []
        for event in self.storage.activations(document):
            version_id = int(event["version_id"])
            if event["kind"] == "retire":
                continue  # out of answering; activating a version later pushes it as usual
            if event["kind"] == "rollback" and stack:
                stack.pop()
            if not stack or stack[-1] != version_id:
                stack.append(version_id)
        return stack
