"""The one entry point every platform calls: a question in, a cited and logged answer out,
and the use cases around it (an answer's buttons, uploads, resolving review groups).

receive -> normalize -> retrieve clauses -> answer or log as unanswered -> (adapter) render.

Over 400 lines because it is one class, `PolicyBot`, the adapters' only way in: its methods
share the worker, the delivery lock and the parts built once. What can stand alone lives
beside it: the question log (bot.question_log), the questions received until answered
(bot.received; its `Delivery`, `Receipt` and `CHECK` re-exported here for the adapters), a
question's text (bot.text), what the use cases return (bot.use_cases), the texts
(bot.messages), who may (bot.access).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import access, messages, policy_views
from bot.answering.checking import PostCheck, check_text
from bot.answering.extractive import (
    Answerer,
    Draft,
    ExtractiveAnswerer,
    citation,
    for_teams,
)
from bot.answering.grounded import GroundedAnswerer, OnSummary
from bot.answering.llm import ChatClient, LLMConfig
from bot.answering.outcome import Outcome, outcome_of
from bot.changes import ChangeSummary
from bot.config import Settings
from bot.console_sessions import ConsoleSessions
from bot.conversation import TURNS_READ, Condenser, FollowUpRule, Reading, Turn
from bot.models import (
    Actor,
    Answer,
    IncomingQuestion,
    PolicyError,
    QuestionError,
    Retrieval,
    ScoredClause,
)
from bot.notify import (
    ChannelPoster,
    LateReplier,
    Notifier,
    Referral,
    ReviewNotice,
    ReviewPoster,
)
from bot.policies import PolicyLibrary
from bot.policy_views import DocumentView
from bot.question_log import QuestionLog
from bot.reading.upload_worker import WorkerLimits
from bot.received import CHECK as CHECK
from bot.received import Delivery as Delivery
from bot.received import Receipt as Receipt
from bot.received import ReceivedQuestions
from bot.redaction import Redactor
from bot.retrieval.active import RETRIEVAL_LIMIT, ActivePolicy, lexical_of
from bot.retrieval.lexical import Retriever
from bot.retrieval.semantic import HybridRetriever, build_retriever
from bot.review.grouping import TermProfile, question_vectors_of
from bot.review.groups import DeliveryReport, Group, ReviewError, reviewed_lead
from bot.review.queue import ReviewQueue
from bot.review.trends import build_trends, date_range
from bot.review.views import (
    GroupView,
    QueueFilter,
    QueueView,
    answer_preview,
    group_view,
    queue_view,
)
from bot.store.database import (
    QuestionRow,
    Storage,
    StorageError,
    VersionInfo,
)
from bot.store.liveness import ProcessMark
from bot.store.unlogged import UnloggedQuestions
from bot.streaming import AnswerStream
from bot.text import clean_text, normalize_question, storable
from bot.use_cases import (
    Fetch,
    Fetched,
    Recheck,
    Resolution,
    ReviewList,
    Settled,
    Shown,
    TeamGroup,
    Tell,
    TrendsReply,
    UploadReply,
)
from bot.worker import Worker

log = logging.getLogger(__name__)


#: What an asker can say about an answer (the buttons under it, on every platform): the one
#: definition; platforms map their buttons' ids onto these.
HELPFUL, NOT_HELPFUL, ASK_POLICY_TEAM = "helpful", "not_helpful", "ask_policy_team"
REACTIONS = (HELPFUL, NOT_HELPFUL, ASK_POLICY_TEAM)
#: The longest comment kept with a rating (Teams' feedback box takes more).
MAX_COMMENT_CHARS = 1000
#: Open questions re-checked per call in the worker after an activation: questions asked
#: meanwhile wait for one slice at most, not for the whole re-check.
RECHECK_SLICE = 25
#: The question `prepare_vectors` retrieves to have a version set's clause vectors computed.
VECTORS_PROBE = "social media policy"


def policy_teams(versions: Iterable[VersionInfo], configured: Sequence[str] = ()) -> list[str]:
    """The teams that review: POLICYBOT_POLICY_TEAMS when set, else the owning teams the
    active documents name (their "owners" lines), in order, once."""
    if configured:
        return list(dict.fromkeys(configured))
    return list(dict.fromkeys(owner for v in versions for owner in v.owners if owner.strip()))


@dataclass
class PolicyBot:
    """The platform-neutral core. Adapters hold one and call `ask`."""

    settings: Settings
    storage: Storage
    retriever: Retriever
    answerer: Answerer
    #: platform name -> how to message someone there; adapters register theirs at start-up.
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    #: platform name -> where the weekly digest goes; adapters register theirs when configured.
    channel_posters: dict[str, ChannelPoster] = field(default_factory=dict)
    #: platform name -> where questions asked there that reach the review list are announced
    #: (POLICYBOT_SLACK_REVIEW_CHANNEL, POLICYBOT_TEAMS_REVIEW_CONVERSATION); adapters register
    #: theirs when configured.
    review_posters: dict[str, ReviewPoster] = field(default_factory=dict)
    #: Questions the log refused (disk full, read-only database), logged once it takes writes.
    unlogged: UnloggedQuestions = field(default_factory=lambda: UnloggedQuestions(None))
    #: platform name -> how to answer there, on start, what a stopped process acknowledged
    #: and did not answer (`answer_left_over`); adapters that acknowledge before answering
    #: register theirs.
    late_repliers: dict[str, LateReplier] = field(default_factory=dict)
    #: This process, as the taker of the questions it receives (see bot.store.liveness);
    #: released by `aclose`.
    mark: ProcessMark = field(default_factory=lambda: ProcessMark(None))
    #: One delivery run at a time: a background retry and a reviewer's answer running side by
    #: side would both read the same pending addresses and message an asker twice.
    _delivering: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    #: Where the database work and the CPU-heavy work run (see bot.worker): the event loop
    #: only does I/O, so acknowledgements never wait behind a question, a lock held by
    #: another process or a policy being embedded.
    worker: Worker = field(default_factory=Worker)
    #: A connection of its own for `/healthz`, which must answer while the worker is busy
    #: (a version being embedded, open questions re-checked, a lock being waited for).
    _health_reader: Storage | None = field(default=None, init=False, repr=False)
    _health_opening: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    #: Active version sets whose clause vectors are being computed (`prepare_vectors`):
    #: questions on them are answered lexically meanwhile rather than wait.
    _embedding: set[tuple[int, ...]] = field(default_factory=set, init=False, repr=False)
    #: With an LLM: rewrites a follow-up and the conversation before it as one standalone
    #: question (`bot.conversation`); None, or when it fails: `follow_ups` decides.
    condenser: Condenser | None = None
    #: Whether a follow-up is read with the question before it, without an LLM.
    follow_ups: FollowUpRule = field(default_factory=FollowUpRule)
    #: The latest background re-check of open questions (None: none since start).
    recheck: Recheck | None = field(default=None, init=False)
    _rechecked: asyncio.Event | None = field(default=None, init=False, repr=False)
    #: Jobs the worker started on the loop (re-checks, vectors): stopped by `aclose` before
    #: the worker, or one would call the worker again as the storage closes under it.
    _jobs: set[concurrent.futures.Future[None]] = field(default_factory=set, init=False, repr=False)
    #: Uploads, diffs, activation and rollback; activation re-checks open questions with this
    #: bot's own retriever and threshold. Built once, from the settings the bot was made with.
    policies: PolicyLibrary = field(init=False, repr=False)
    #: The policy team's review list, grouping with this bot's retrieval and word rarity.
    review: ReviewQueue = field(init=False, repr=False)
    #: Writes every question to the log (or keeps it until the log takes writes).
    question_log: QuestionLog = field(init=False, repr=False)
    #: Deliveries taken before their acknowledgement, kept until answered (bot.received).
    received: ReceivedQuestions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.policies = PolicyLibrary(
            self.storage,
            self.settings.max_upload_bytes,
            retriever=self.retriever,
            min_confidence=self.settings.min_confidence,
            uncertain_confidence=self.settings.uncertain_confidence,
            max_citations=self.settings.max_citations,
            admins=self.settings.admins,
            reading=WorkerLimits(
                self.settings.upload_read_seconds, self.settings.upload_read_memory_mb * 2**20
            ),
        )
        self.policies.recheck_later = self._recheck_later
        self.console_sessions = ConsoleSessions(self.storage, self.worker, self.settings)
        self.review = ReviewQueue(
            self.storage,
            self.retrieve,
            lexical_of(self.retriever, self.storage),
            question_vectors_of(self.retriever),
        )
        # What is logged with a question (a failure's message, an LLM's reason) may quote a
        # secret; the question log and the exports read from it must not.
        self.question_log = QuestionLog(
            self.storage,
            self.review,
            self.unlogged,
            Redactor.of(self.settings),
            self.settings.max_question_chars,
        )
        self.received = ReceivedQuestions(self.storage, self.worker, self.question_log, self.mark)
        # What adapters call on the bot around a delivery: the received questions' own
        # methods, so their signatures are written once (bot.received).
        self.take_delivery = self.received.take_delivery
        self.claim_delivery = self.received.claim_delivery
        self.record_reply = self.received.record_reply

    @classmethod
    def create(cls, settings: Settings, storage: Storage | None = None) -> PolicyBot:
        storage = storage or Storage.open(settings.database)
        answerer: Answerer = ExtractiveAnswerer(settings.max_citations)
        condenser = None
        if settings.openai_base_url.strip() and not settings.llm_model.strip():
            # OPENAI_BASE_URL is often set for other tools; only the model opts policybot in.
            log.warning("OPENAI_BASE_URL is set but POLICYBOT_LLM_MODEL is not: extractive answers")
        if settings.llm_configured:
            client = ChatClient(LLMConfig.from_settings(settings))
            # One client for both calls: the answerer closes it.
            condenser = Condenser(client, budget=min(settings.llm_budget, settings.llm_timeout))
            answerer = GroundedAnswerer(
                client,
                max_citations=settings.max_citations,
                budget=settings.llm_budget,
                min_confidence=settings.min_confidence,
                uncertain_confidence=settings.uncertain_confidence,
                floor=settings.llm_floor,
            )
        return cls(
            settings=settings,
            storage=storage,
            unlogged=UnloggedQuestions.of(storage.location, settings.db_path),
            mark=ProcessMark.beside(storage.location),
            retriever=build_retriever(storage, settings.retriever),
            answerer=answerer,
            condenser=condenser,
        )

    async def aclose(self) -> None:
        """Release the answerer's connections (the LLM's); call it in the loop that asked."""
        await self.received.aclose()
        # Background jobs first: a re-check between slices would otherwise start the worker
        # again after it closed, and query the storage while its owner closes it (a crash in
        # SQLite). Open questions it did not reach stay open, as after a failed re-check.
        for future in list(self._jobs):
            future.cancel()
        for future in list(self._jobs):
            with contextlib.suppress(concurrent.futures.CancelledError, Exception):
                await asyncio.wrap_future(future)
        await asyncio.to_thread(self.worker.close)
        if self._health_reader is not None:
            self._health_reader.close()
            self._health_reader = None
        self.mark.release()
        await self.close_connections()

    async def close_connections(self) -> None:
        """Close the connections the running loop opened (the LLM's); also for an event loop
        that ends before the bot (the one answering Slack's questions)."""
        close = getattr(self.answerer, "aclose", None)
        if close is not None:
            await close()

    async def health(self) -> tuple[list[VersionInfo], int]:
        """The active versions and the schema version, for `/healthz`: read beside the
        worker, on a connection of its own (an in-memory database has one: the worker's)."""
        if self.storage.location is None:
            return await self.worker.run(self._health_of, self.storage)
        return await asyncio.to_thread(self._health_of, None)

    def _health_of(self, storage: Storage | None) -> tuple[list[VersionInfo], int]:
        if storage is None:
            with self._health_opening:
                if self._health_reader is None:
                    assert self.storage.location is not None
                    self._health_reader = Storage.open(self.storage.location)
                storage = self._health_reader
        return storage.active_versions(), storage.schema_version

    def is_admin(self, actor: Actor) -> bool:
        """May this Slack user / Teams AAD object id upload and activate policies, on the
        platform they act from?"""
        return self.policies.is_admin(actor)

    def ensure_policy(self) -> list[VersionInfo]:
        """A database with no policy at all gets the bundled one, so the bot always answers."""
        if not self.storage.has_policy():
            self.policies.load_bundled(self.settings.policies_dir)
        return self.storage.active_versions()

    def active_versions(self) -> list[VersionInfo]:
        """The active version of each document, for saying what the bot answers from."""
        return self.storage.active_versions()

    def example_question(self) -> str:
        """A question to offer as an example (a chat's banner, an empty question's hint),
        about a section of the active policy, so it fits the organization's own policy."""
        return self.example_questions(1)[0]

    def example_questions(self, count: int) -> list[str]:
        """Up to `count` example questions about different sections of the active policy
        (suggested prompts), the first being `example_question`'s; at least one."""
        for version in self.storage.active_versions():
            titles = [
                stored.clause.section_title
                for stored in self.storage.clauses([version.id])
                if stored.clause.section_title not in ("", version.title)
            ]
            if titles:
                # From the middle: a policy's first sections are its purpose and scope.
                middle = titles[len(titles) // 2]
                sections = list(dict.fromkeys(titles))
                start = sections.index(middle)
                ordered = sections[start:] + sections[:start]
                # Spread over the policy rather than neighbouring sections of one part.
                step = max(1, len(ordered) // max(1, count))
                return [messages.example_question(t) for t in ordered[::step][: max(1, count)]]
        return [messages.example_question("")]

    def prompt_starters(self, count: int) -> list[tuple[str, str]]:
        """Up to `count` questions to offer as starters, each with the section title it is
        about: one per section of the active policy, spread over it, its opening sections
        (purpose, scope) left out while there are enough others."""
        titles: list[str] = []
        for version in self.storage.active_versions():
            for stored in self.storage.clauses([version.id]):
                title = stored.clause.section_title.strip()
                if title and title != version.title and title not in titles:
                    titles.append(title)
        body = titles[2:] if len(titles) - 2 >= count else titles
        if count <= 0 or not body:
            return []
        step = max(1, len(body) // count)
        chosen = body[::step][:count]
        return [(title, messages.example_question(title)) for title in chosen]

    def active_policy(self) -> ActivePolicy:
        """One read of the active set: a question is answered from whole versions, never a mix."""
        return ActivePolicy.read(self.storage, self.retriever)

    def _recheck_later(self) -> int | None:
        """For PolicyLibrary, in the worker: start re-checking the open questions as a job on
        the loop that handed the worker its call, and say how many; None (re-check them
        now) outside the worker, as in the CLI."""
        loop = self.worker.loop
        if not self.worker.in_worker or loop is None or loop.is_closed():
            return None
        marked = self._mark_embedding()  # the questions after this one: lexical until then
        job = Recheck(len(self.storage.open_unanswered_questions()))
        if not job.total:  # nothing to re-check, nothing to tell
            self._rechecked = None
            if marked is not None:
                self._start_job(self.prepare_vectors(marked), loop)
            return 0
        # Set here, before the job starts: whoever awaits `when_rechecked` next waits for it.
        self.recheck, self._rechecked = job, asyncio.Event()
        self._start_job(self._recheck_in_background(job, self._rechecked, marked), loop)
        return job.total

    def _start_job(self, job: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop) -> None:
        """From the worker: run `job` on the loop, kept until it ends so `aclose` can stop it."""
        future = asyncio.run_coroutine_threadsafe(job, loop)
        self._jobs.add(future)
        future.add_done_callback(self._jobs.discard)

    async def _recheck_in_background(
        self, job: Recheck, done: asyncio.Event, marked: tuple[int, ...] | None
    ) -> None:
        """Re-check in slices, each its own call in the worker, so questions asked meanwhile
        are answered between them; a newer job (another activation) supersedes this one."""
        try:
            # The new active set's vectors first: the re-check retrieves as questions do.
            await self.prepare_vectors(marked)
            questions = await self.worker.run(self.storage.open_unanswered_questions)
            for start in range(0, len(questions), RECHECK_SLICE):
                if self.recheck is not job:
                    return
                now_answered = await self.worker.run(
                    self.policies.recheck_questions, questions[start : start + RECHECK_SLICE]
                )
                job.done += len(questions[start : start + RECHECK_SLICE])
                job.now_answered += len(now_answered)
            job.total = max(job.total, job.done)
            job.finished = True
            log.info("%s", job.as_text())
        except Exception:  # a failed re-check leaves the questions as they were: open
            log.exception("re-checking open questions failed after %d", job.done)
        finally:
            done.set()

    def _mark_embedding(self) -> tuple[int, ...] | None:
        """In the worker: the active versions, marked as being embedded so that every
        question after this in the worker's queue is answered lexically until they are;
        None when there is nothing to embed (lexical retrieval, or already under way)."""
        retriever = self.retriever
        if not isinstance(retriever, HybridRetriever) or retriever.off_because is not None:
            return None
        versions = tuple(v.id for v in self.storage.active_versions())
        if not versions or versions in self._embedding:
            return None
        self._embedding.add(versions)
        return versions

    async def prepare_vectors(self, marked: tuple[int, ...] | None = None) -> None:
        """Compute the active versions' clause vectors now (on start, after an activation)
        rather than on the next question: beside the worker, on a connection of its own,
        stored in the database for every process. Questions asked meanwhile are answered
        lexically; a failure is logged and leaves the vectors to the first question.
        `marked`: the versions `_mark_embedding` already marked."""
        versions = marked or await self.worker.run(self._mark_embedding)
        retriever = self.retriever
        if versions is None or not isinstance(retriever, HybridRetriever):
            return
        started = time.monotonic()
        try:
            if self.storage.location is None:  # in memory: the worker's is the one connection
                await self.worker.run(retriever.retrieve, VECTORS_PROBE, versions, 1)
            else:
                await asyncio.to_thread(self._embed_on_own_connection, retriever, versions)
            log.info(
                "clause vectors of versions %s ready in %.1f s",
                ", ".join(map(str, versions)),
                time.monotonic() - started,
            )
        except Exception:
            log.exception("computing the clause vectors failed; the first question will")
        finally:
            self._embedding.discard(versions)

    def _embed_on_own_connection(
        self, retriever: HybridRetriever, versions: tuple[int, ...]
    ) -> None:
        assert self.storage.location is not None
        storage = Storage.open(self.storage.location)
        try:
            # The same model, so the vectors it stores are the ones `retriever` reads.
            HybridRetriever(storage, embedder=retriever.embedder).retrieve(
                VECTORS_PROBE, versions, 1
            )
        finally:
            storage.close()

    async def when_rechecked(self, tell: Tell) -> None:
        """Tell (`tell`) the admin who just activated what the background re-check found,
        once it is done; nothing when no re-check is under way."""
        job, done = self.recheck, self._rechecked
        if job is None or done is None:
            return
        await done.wait()
        if job.finished and self.recheck is job:
            await tell(job.as_text())

    async def answer_left_over(self, *, now: datetime | None = None) -> int:
        """`ReceivedQuestions.answer_left_over`, answered by this bot: on start, what a
        stopped process acknowledged and did not answer."""
        return await self.received.answer_left_over(self, now=now)

    def retrieve(self, question: str) -> Retrieval:
        return self.active_policy().retrieve(question)

    def ask_streamed(
        self, incoming: IncomingQuestion, *, received: int | None = None
    ) -> AnswerStream:
        """`ask`, with the draft of an LLM's summary handed out while the model writes it (see
        bot.streaming): an adapter that can show a message growing iterates it. Extractive and
        reviewed answers, and anything asked without an LLM, come whole, with no draft."""
        return AnswerStream(
            lambda on_draft: self.ask(incoming, received=received, on_draft=on_draft)
        )

    async def ask(
        self,
        incoming: IncomingQuestion,
        *,
        received: int | None = None,
        on_draft: OnSummary | None = None,
    ) -> Answer:
        """Answer from the active policy and log the question; QuestionError for bad input.
        `received`: the question's id from `receive`, marked logged with its log row.
        `on_draft`: told an LLM summary's draft as it is written (`ask_streamed`)."""
        # The one place every platform's question enters: from here on nothing in it can be
        # refused by the log, the spool or the JSON of a reply.
        incoming = storable(incoming)
        try:
            question = normalize_question(incoming.text, self.settings.max_question_chars)
        except QuestionError as error:
            await self.worker.run(self.question_log.refused, incoming, str(error), received)
            raise
        try:
            turns = await self.worker.run(self._conversation_so_far, incoming)
            condensed, why_not = None, ""
            if turns and self.condenser is not None:
                condensed, why_not = await self.condenser.condense(question, turns)
            active, retrieval, profile, reviewed, reading = await self.worker.run(
                self._retrieved, question, turns, condensed
            )
            if reviewed is not None:
                draft = Draft(
                    outcome=Outcome.ANSWERED,
                    lead=reviewed_lead(reviewed),
                    citations=(),
                    source="reviewed",
                )
            else:
                outcome = outcome_of(
                    retrieval, self.settings.min_confidence, self.settings.uncertain_confidence
                )
                draft = await self._answer(retrieval, outcome, on_draft)
                # Who reviews it is the active policy's owners, not a fixed list of teams.
                draft = for_teams(draft, policy_teams(active.versions, self.settings.policy_teams))
            if why_not:
                note = f"follow-up not condensed by the LLM: {why_not}"
                draft = dataclasses.replace(draft, notes=(*draft.notes, note))
        except Exception as error:
            # The asker gets the adapter's apology; the question still reaches the policy team,
            # on the review list and in the platform's review channel.
            question_id = await self.worker.run(
                self.question_log.failed, incoming, question, error, received
            )
            try:
                await self.announce(
                    incoming.platform,
                    Referral(question_id, "failed", question),
                    asker=incoming.asker,
                    asker_name=incoming.asker_name,
                )
            except Exception:  # the original failure is the one to report
                log.exception("could not announce a question that failed")
            raise
        return await self.worker.run(
            self._logged,
            incoming,
            question,
            retrieval,
            draft,
            active,
            reviewed,
            profile,
            received,
            reading,
        )

    async def _answer(
        self, retrieval: Retrieval, outcome: Outcome, on_draft: OnSummary | None
    ) -> Draft:
        """The answerer's draft; streamed to `on_draft` when the answer is an LLM's. A draft
        the asker saw that the final answer is not (the check refused the finished summary,
        or the model broke off) is said to be replaced, in the answer itself."""
        if on_draft is None or not isinstance(self.answerer, GroundedAnswerer):
            return await self.answerer.answer(retrieval, outcome=outcome)
        shown = False

        def show(text: str) -> None:
            nonlocal shown
            shown = True
            on_draft(text)

        draft = await self.answerer.answer(retrieval, outcome=outcome, on_summary=show)
        if shown and not (draft.source == "llm" and draft.outcome is Outcome.ANSWERED):
            draft = dataclasses.replace(
                draft,
                lead=f"{messages.DRAFT_REPLACED} {draft.lead}",
                notes=(*draft.notes, "the streamed draft was replaced"),
            )
        return draft

    def _conversation_so_far(self, incoming: IncomingQuestion) -> list[Turn]:
        """The asker's own last turns in the conversation the question continues, within
        POLICYBOT_CONVERSATION_MINUTES, from the question log (no platform history call)."""
        minutes = self.settings.conversation_minutes
        if minutes <= 0 or not (incoming.conversation_key or incoming.conversation_pseudonym):
            return []
        since = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
        try:
            rows = self.question_log.conversation_turns(incoming, since, TURNS_READ)
        except StorageError as error:  # unreadable log: the question is answered alone
            log.warning("reading the conversation so far failed: %s", error)
            return []
        return [Turn(asked, standalone or "") for asked, standalone in rows]

    def _retrieved(
        self, question: str, turns: Sequence[Turn] = (), condensed: str | None = None
    ) -> tuple[ActivePolicy, Retrieval, TermProfile, Group | None, Reading]:
        """A question's retrieval, in the worker: the active set read once, what retrieval
        sees for it after the turns before it (`bot.conversation`), the clauses, and the
        reviewed answer it would get."""
        active = self.active_policy()

        def retrieve(text: str) -> Retrieval:
            if active.version_ids in self._embedding:
                return active.lexical.retrieve(text, active.version_ids, RETRIEVAL_LIMIT)
            return active.retrieve(text)

        reading, retrieval = self.follow_ups.resolve(question, turns, retrieve, condensed)
        profile = self.review.profile(reading.standalone)
        # A question the policy team has already answered gets their answer, whatever
        # retrieval would say: they answered it because the policy alone did not.
        reviewed = self.review.best_group(profile, retrieval, status="answered")
        return active, retrieval, profile, reviewed, reading

    def _logged(
        self,
        incoming: IncomingQuestion,
        question: str,
        retrieval: Retrieval,
        draft: Draft,
        active: ActivePolicy,
        reviewed: Group | None,
        profile: TermProfile,
        received: int | None,
        reading: Reading | None = None,
    ) -> Answer:
        standalone = reading.standalone if reading is not None and reading.continued else ""
        answer = self.question_log.answered(
            incoming, question, retrieval, draft, active, reviewed, received, standalone
        )
        if draft.outcome.reviewed and answer.question_id is not None:
            # Just logged, so in no group: `join`, with what this turn already worked out; a
            # follow-up is grouped by what it asks, the standalone question.
            label = messages.follow_up_label(question, standalone) if standalone else ""
            self.review.join(
                answer.question_id, standalone or question, retrieval, profile, label=label
            )
        return answer

    async def remember_answer_message(
        self, platform: str, conversation: str, message_id: str, question_id: int
    ) -> None:
        """Keep which question an answer message shows, for a platform whose feedback names
        only the message (Teams'); in the database, so a restart or another replica finds it.
        A database that refuses the write costs the mapping only (logged), not the answer."""
        try:
            await self.worker.run(
                self.storage.remember_answer_message,
                platform,
                conversation,
                message_id,
                question_id,
            )
        except StorageError:
            log.warning("could not record which question a %s message answers", platform)

    async def answer_message(self, platform: str, conversation: str, message_id: str) -> int | None:
        """The question an answer message shows (`remember_answer_message`), or None."""
        return await self.worker.run(
            self.storage.answer_message, platform, conversation, message_id
        )

    def feedback(self, question_id: int, *, helpful: bool) -> None:
        """Helpful / Not helpful. Not helpful puts the question on the review list."""
        if helpful:
            self.storage.update_question(question_id, feedback="helpful")
        else:
            self.storage.update_question(
                question_id, feedback="not_helpful", status="open", review_reason="not_helpful"
            )
            self.review.place(question_id)

    def keep_comment(self, question_id: int, reaction: str, comment: str) -> None:
        """A rating's comment, cleaned, shortened and scrubbed of secrets, kept with the
        question (the latest one, also when the rating itself is the same again)."""
        kept = self.question_log.redactor.scrub(clean_text(comment))[:MAX_COMMENT_CHARS]
        if not kept or reaction not in (HELPFUL, NOT_HELPFUL):
            return
        if not Outcome(self.storage.question(question_id).outcome).cites:
            return  # "not covered" replies are not rated (reaction_refusal)
        self.storage.update_question(question_id, feedback_comment=kept)

    def escalate(self, question_id: int) -> None:
        """ "Ask the policy team": the question goes on the review list whatever was answered."""
        self.storage.update_question(question_id, status="open", review_reason="ask_policy_team")
        self.review.place(question_id)

    def reaction_refusal(self, question_id: int, reaction: str) -> str | None:
        """Why `reaction` is not taken on this question, or None when it is: a rating of a "not
        covered" reply (there was no answer to rate, and the question is on the review list
        already; an uncertain answer's closest clauses can be rated), or the reaction already
        recorded (pressed again, it would thank again and post to the review channel again).
        KeyError when there is no such question."""
        row = self.storage.question(question_id)
        if reaction in (HELPFUL, NOT_HELPFUL) and not Outcome(row.outcome).cites:
            return messages.NOTHING_TO_RATE
        if reaction in (HELPFUL, NOT_HELPFUL) and row.feedback == reaction:
            return messages.ALREADY_NOTED[reaction]
        escalated = row.status == "open" and row.review_reason == ASK_POLICY_TEAM
        if reaction == ASK_POLICY_TEAM and escalated:
            return messages.ALREADY_NOTED[reaction]
        return None

    def react(self, question_id: int, reaction: str, comment: str = "") -> Referral | None:
        """An asker's reaction (one of REACTIONS) to an answer, from any platform, with what
        they wrote beside a rating (`comment`, kept with the question): the referral for
        `announce` when the question goes on the review list, else None. KeyError when there
        is no such question."""
        if reaction not in REACTIONS:
            raise ValueError(f"unknown reaction {reaction!r}")
        self.keep_comment(question_id, reaction, comment)
        if self.reaction_refusal(question_id, reaction) is not None:
            return None  # nothing recorded, so nothing to announce again
        if reaction == ASK_POLICY_TEAM:
            self.escalate(question_id)
        else:
            self.feedback(question_id, helpful=reaction == HELPFUL)
        return None if reaction == HELPFUL else Referral(question_id, reaction)

    async def refer_unanswered(self, answer: Answer, incoming: IncomingQuestion) -> None:
        """After the asker has the answer: a question the policy does not cover, or covers
        only uncertainly, is announced in the review channel of the platform it was asked on
        (the reason: its outcome)."""
        if answer.outcome.reviewed:
            referral = Referral(answer.question_id, answer.outcome.value, answer.question)
            await self.announce(
                incoming.platform, referral, asker=incoming.asker, asker_name=incoming.asker_name
            )

    async def announce(
        self, platform: str, referral: Referral | None, asker: str = "", asker_name: str = ""
    ) -> None:
        """Tell `platform`'s review channel, if it has one, that a question went on the review
        list; the asker is named only with POLICYBOT_SHOW_ASKERS (by `asker_name`, else by the
        name logged with the question). A failure is logged: the question is on the list
        anyway."""
        poster = self.review_posters.get(platform)
        if referral is None or poster is None:
            return
        notice = await self.worker.run(self._notice_of, referral, asker, asker_name)
        try:
            await poster.post(notice)
        except Exception:  # any platform failure; the review list itself is unaffected
            log.exception("could not post to the %s review channel", platform)

    def _notice_of(self, referral: Referral, asker: str, asker_name: str) -> ReviewNotice:
        row: QuestionRow | None = None
        if referral.question_id is not None:
            with contextlib.suppress(KeyError):
                row = self.storage.question(referral.question_id)
        return self._review_notice(
            referral.question_id, row, referral.reason, referral.question, asker, asker_name
        )

    def review_notice(self, question_id: int) -> ReviewNotice:
        """A logged question's review notice rebuilt from the log, as its review-channel post
        showed it (to show that post again once its group is answered or dismissed). The asker
        is named as `announce` names them, by the logged name. KeyError when there is no such
        question."""
        row = self.storage.question(question_id)
        address = self.storage.reply_address(question_id) if self.settings.show_askers else None
        asker = address["user_id"] if address else ""  # deleted once the answer was delivered
        return self._review_notice(question_id, row, row.review_reason or "", "", asker, "")

    def _review_notice(
        self,
        question_id: int | None,
        row: QuestionRow | None,
        reason: str,
        question: str,
        asker: str,
        asker_name: str,
    ) -> ReviewNotice:
        show = self.settings.show_askers
        if show and not asker_name and question_id is not None:
            asker_name = self.storage.asker_names([question_id]).get(question_id, "")
        return ReviewNotice(
            question=question or (row.text if row else ""),
            question_id=question_id,
            reason=reason,
            asker=asker if show else "",
            group_id=row.group_id if row else None,
            asker_name=asker_name if show else "",
        )

    # -- the use cases: every platform's way in, the same on each --------------------------------
    async def after_reply(
        self, incoming: IncomingQuestion, answer: Answer | None, received: int | None = None
    ) -> None:
        """Once the asker has their reply (`answer`: None when it was a refusal or the
        apology): the received question is no longer left to answer, and one the policy does
        not cover is announced in the review channel of the platform it was asked on."""
        await self.received.record_reply(received)
        if answer is not None:
            await self.refer_unanswered(answer, incoming)

    async def react_to_answer(
        self, actor: Actor, question_id: int | None, reaction: str, tell: Tell, comment: str = ""
    ) -> bool:
        """An answer's button pressed (one of REACTIONS; `question_id` None when the button's
        value was garbled): the reaction recorded, the presser told so (`tell`), then the
        platform's review channel told when the question went on the review list. False, and
        the presser told, when the question is gone or the reaction not taken (a rating of a
        "not covered" reply, the same reaction again: `reaction_refusal`)."""
        try:
            if question_id is None:
                raise KeyError(question_id)
            refusal = await self.worker.run(self.reaction_refusal, question_id, reaction)
            if refusal is not None:
                self.keep_comment(question_id, reaction, comment)
                await tell(refusal)
                return False
            referral = await self.worker.run(self.react, question_id, reaction, comment)
        except KeyError:
            await tell(messages.STALE_QUESTION)
            return False
        await tell(messages.REACTION_NOTES[reaction])
        await self.announce(actor.platform, referral, asker=actor.user_id)
        return True

    async def receive_upload(self, actor: Actor, name: str, fetch: Fetch) -> UploadReply:
        """A policy file handed to the bot (`name`; `fetch` its bytes): admins only, checked
        before anything is fetched; read in the upload worker and stored off the event loop,
        staged, never activated here. The change summary, or the refusal to show."""
        try:
            self.policies.authorize(actor, action="policy upload")
        except PolicyError as refusal:
            return UploadReply(None, str(refusal))
        try:
            fetched = await fetch()
            if isinstance(fetched, Fetched):
                name, data = fetched.name, fetched.data
            else:
                data = fetched
            result = await self.policies.upload_in_background(
                name, data, uploaded_by=actor.recorded_as, worker=self.worker
            )
        except PolicyError as error:
            return UploadReply(None, messages.upload_refused(str(error)))
        return UploadReply(result)

    def retire_document(self, actor: Actor, document: str) -> Settled:
        """Take a document out of answering (`policy retire`; a platform's Retire button or
        command): admins only, recorded in the document's history, undone by activating one
        of its versions. The retired version (None when refused or nothing was active) and
        the sentence to show."""
        try:
            self.policies.authorize(actor, action="policy retire")
            retirement = self.policies.retire(document.strip(), by=actor.recorded_as)
        except PolicyError as error:  # not an admin, no such document
            return Settled(None, str(error))
        return Settled(retirement.version, retirement.as_text())

    def settle_upload(self, actor: Actor, version_id: int | None, action: str) -> Settled:
        """Activate / Discard (ACTIVATE, DISCARD) under an upload's change summary; admins
        only, checked again at the press (a message can be forwarded)."""
        try:
            settlement = self.policies.settle(version_id, action, actor)
        except PolicyError as error:  # not an admin, a stale button, not discardable
            return Settled(None, str(error))
        return Settled(settlement.version, settlement.outcome)

    async def may_review(
        self, actor: Actor, *, action: str = "", in_team_group: TeamGroup | None = None
    ) -> bool:
        """bot.access.may_review with this bot's settings."""
        return await access.may_review(
            actor, self.settings, action=action, in_team_group=in_team_group
        )

    async def review_list(
        self,
        actor: Actor,
        *,
        private: bool = True,
        action: str = "review",
        in_team_group: TeamGroup | None = None,
    ) -> ReviewList:
        """The open groups for the policy team, busiest first; refused to anyone else (to the
        security log with `action`; "" for a look that is no attempt, such as opening a home
        tab) and anywhere not `private` (others would read the askers' questions)."""
        if not await self.may_review(actor, action=action, in_team_group=in_team_group):
            return ReviewList(None, messages.NOT_POLICY_TEAM)
        if not private:
            return ReviewList(None, messages.REVIEW_IN_PRIVATE)
        return ReviewList(tuple(await self.worker.run(self.review.queue, status="open")))

    async def trends(
        self,
        actor: Actor,
        since: str = "",
        until: str = "",
        *,
        action: str = "trends",
        in_team_group: TeamGroup | None = None,
    ) -> TrendsReply:
        """What was asked from `since` to `until` (YYYY-MM-DD, whole UTC days; by default the
        last twelve weeks), week by week, for the policy team and the admins; refused to anyone
        else (the topics carry employees' questions), to the security log with `action`."""
        if not access.is_admin(self.settings.admins, actor) and not await self.may_review(
            actor, action=action, in_team_group=in_team_group
        ):
            return TrendsReply(None, refusal=messages.NOT_POLICY_TEAM)
        try:
            first, last = date_range(since, until)
        except ReviewError as error:
            return TrendsReply(None, problem=str(error))
        return TrendsReply(
            await self.worker.run(build_trends, self.storage, self.review, first, last)
        )

    async def group_to_answer(
        self,
        actor: Actor,
        group_id: int | None,
        *,
        action: str = "review answer",
        in_team_group: TeamGroup | None = None,
    ) -> Resolution:
        """The group a reviewer is about to answer (to show it in a form), or why not;
        nothing changes either way."""
        if not await self.may_review(actor, action=action, in_team_group=in_team_group):
            return Resolution(messages.NOT_POLICY_TEAM_ACTION)
        if group_id is None:
            return Resolution(messages.STALE_GROUP)
        try:
            return Resolution("", await self.worker.run(self.review.group, group_id))
        except ReviewError as error:
            return Resolution(str(error))

    async def resolve_group(
        self,
        actor: Actor,
        group_id: int | None,
        answer: str | None,
        *,
        action: str = "",
        in_team_group: TeamGroup | None = None,
        recorded: Callable[[], Awaitable[None]] | None = None,
    ) -> Resolution:
        """A reviewer answers a group (`answer`) or dismisses it (None), in one order on every
        platform: may they review (refusals to the security log as `action`, by default
        "review answer" / "review dismiss"), does the group exist, the answer or dismissal
        stored, then `recorded` (a platform that must close a form quickly does it there),
        then the answer sent to everyone who asked, on the platform they asked on."""
        verb = "dismiss" if answer is None else "answer"
        if not await self.may_review(
            actor, action=action or f"review {verb}", in_team_group=in_team_group
        ):
            return Resolution(messages.NOT_POLICY_TEAM_ACTION)
        if group_id is None:
            return Resolution(messages.STALE_GROUP)
        by = actor.recorded_as
        try:
            if answer is None:
                group = await self.worker.run(self.review.dismiss, group_id, by)
            else:
                group = await self.worker.run(self.review.answer, group_id, answer, by)
        except ReviewError as error:  # no such group, an empty or oversized answer
            return Resolution(str(error))
        if recorded is not None:
            await recorded()
        if answer is None:
            return Resolution(messages.group_dismissed(group.id, group.count), group)
        report = await self.deliver_answers(group_id)
        text = messages.group_answered(group.id, group.count, report.describe(), report.pending)
        return Resolution(text, group, report)

    async def answer_group(self, group_id: int, text: str, by: str = "") -> DeliveryReport:
        """A reviewer answers a group: the answer is stored as a reviewed answer and sent to
        everyone who asked in the group, on the platform they asked on."""
        await self.worker.run(self.review.answer, group_id, text, by)
        return await self.deliver_answers(group_id)

    def dismiss_group(self, group_id: int, by: str = "") -> Group:
        return self.review.dismiss(group_id, by)

    async def deliver_answers(self, group_id: int | None = None) -> DeliveryReport:
        """Send reviewed answers not yet delivered (after answering, or to retry); addresses
        past the retention period are deleted first, so nobody is contacted after it."""
        async with self._delivering:
            await self.worker.run(self.review.expire, self.settings.retention_days)
            return await self.review.deliver(self.notifiers, group_id, worker=self.worker)

    async def deliver_answers_to(self, actor: Actor, notifier: Notifier) -> DeliveryReport:
        """Reviewed answers waiting for one asker, sent through `notifier`: for a platform
        that can only reach its askers while they are there (the console, when its chat
        opens), not from `deliver_answers`."""
        async with self._delivering:
            await self.worker.run(self.review.expire, self.settings.retention_days)
            return await self.review.deliver(
                {actor.platform: notifier},
                asker=(actor.platform, actor.user_id),
                worker=self.worker,
            )

    def open_questions(self, limit: int = 1000) -> list[QuestionRow]:
        return list(self.storage.questions(status="open", limit=limit))

    def check_post(self, text: str) -> PostCheck:
        """Which clauses apply to a draft post or message; QuestionError for empty or huge text.

        Nothing is logged: the text may be someone's private draft.
        """
        active = self.active_policy()
        cleaned, findings = check_text(
            text,
            active,
            min_confidence=self.settings.min_confidence,
            limit=self.settings.max_citations + 2,
        )
        version = active.policy_version(f.citation for f in findings)
        return PostCheck(text=cleaned, findings=findings, policy_version=version)

    def logged_answer(self, question_id: int) -> Answer:
        """A logged answer as it was given, for showing it again (e.g. sharing it in a channel).

        KeyError when there is no such question.
        """
        row = self.storage.question(question_id)
        ids = [int(c["clause_id"]) for c in row.citations]
        stored = self.storage.clauses_by_id(ids)
        citations = tuple(citation(ScoredClause(stored[i], 0.0)) for i in ids if i in stored)
        return Answer(
            question=row.text,
            outcome=Outcome(row.outcome),
            lead=row.answer_text or "",
            citations=citations,
            confidence=float(row.confidence or 0.0),
            question_id=question_id,
            policy_version=row.policy_version or "",
            source=row.answer_source or "extractive",
            asked_as=row.standalone or "",
        )

    # -- the web console's screens: what the policy team and admins read ----------------------
    async def review_queue(
        self, actor: Actor, wanted: QueueFilter, *, in_team_group: TeamGroup | None = None
    ) -> Shown[QueueView]:
        """The groups `wanted` admits, busiest first, with samples and counts per status;
        for the policy team only (refusals to the security log as "review")."""
        if not await self.may_review(actor, action="review", in_team_group=in_team_group):
            return Shown(None, messages.NOT_POLICY_TEAM, forbidden=True)
        return Shown(await self.worker.run(queue_view, self.review, self.storage, wanted))

    async def review_group(
        self, actor: Actor, group_id: int, *, in_team_group: TeamGroup | None = None
    ) -> Shown[GroupView]:
        """One group with every question (askers as pseudonyms unless POLICYBOT_SHOW_ASKERS),
        its reasons and who did what to it, when; for the policy team only."""
        if not await self.may_review(actor, action="review", in_team_group=in_team_group):
            return Shown(None, messages.NOT_POLICY_TEAM, forbidden=True)
        try:
            view = await self.worker.run(
                group_view,
                self.review,
                self.storage,
                group_id,
                show_askers=self.settings.show_askers,
                redactor=self.question_log.redactor,
            )
        except ReviewError as error:
            return Shown(None, str(error))
        return Shown(view)

    async def preview_answer(
        self,
        actor: Actor,
        group_id: int,
        text: str,
        *,
        in_team_group: TeamGroup | None = None,
    ) -> Shown[str]:
        """What the group's askers would be sent for `text`, word for word, or why the answer
        would be refused (empty, too long); nothing is stored or sent."""
        if not await self.may_review(actor, action="review answer", in_team_group=in_team_group):
            return Shown(None, messages.NOT_POLICY_TEAM_ACTION, forbidden=True)
        try:
            group = await self.worker.run(self.review.group, group_id)
            return Shown(answer_preview(group, text))
        except ReviewError as error:
            return Shown(None, str(error))

    async def dismiss_groups(
        self,
        actor: Actor,
        group_ids: Sequence[int],
        *,
        in_team_group: TeamGroup | None = None,
    ) -> list[Resolution]:
        """Dismiss several groups, each through `resolve_group` as a single dismissal goes
        (so each is checked, stored and recorded alike); one refusal, logged once, for
        someone outside the policy team."""
        action = "review bulk dismiss"
        if not await self.may_review(actor, action=action, in_team_group=in_team_group):
            return [Resolution(messages.NOT_POLICY_TEAM_ACTION)]
        return [
            await self.resolve_group(
                actor, group_id, None, action=action, in_team_group=in_team_group
            )
            for group_id in dict.fromkeys(group_ids)
        ]

    async def may_read_policies(
        self, actor: Actor, *, action: str = "", in_team_group: TeamGroup | None = None
    ) -> bool:
        """Policy admins and the policy team may read the policy pages (only admins change
        them: `PolicyLibrary.authorize`); with `action`, a refusal goes to the security log."""
        if self.is_admin(actor) or await self.may_review(actor, in_team_group=in_team_group):
            return True
        if action:
            access.refused(
                action,
                platform=actor.platform,
                who=actor.user_id,
                reason="neither a policy admin nor in the policy team",
            )
        return False

    async def policy_documents(
        self, actor: Actor, *, in_team_group: TeamGroup | None = None
    ) -> Shown[list[DocumentView]]:
        """Every document with its versions, history and each activation's re-check results."""
        if not await self.may_read_policies(
            actor, action="policy view", in_team_group=in_team_group
        ):
            return Shown(None, messages.NOT_POLICY_READER, forbidden=True)
        return Shown(await self.worker.run(policy_views.documents, self.policies))

    async def version_changes(
        self, actor: Actor, version_id: int, *, in_team_group: TeamGroup | None = None
    ) -> Shown[ChangeSummary]:
        """What a version changes against its document's active one (the active version:
        against the one before it), or why not (no such version)."""
        if not await self.may_read_policies(
            actor, action="policy view", in_team_group=in_team_group
        ):
            return Shown(None, messages.NOT_POLICY_READER, forbidden=True)
        try:
            return Shown(await self.worker.run(self.policies.diff, version_id))
        except PolicyError as error:
            return Shown(None, str(error))

    def rollback_document(self, actor: Actor, document: str) -> Settled:
        """Back to the version of `document` that was active before (`policy rollback`):
        admins only; the open questions are re-checked as after an activation."""
        try:
            self.policies.authorize(actor, action="policy rollback")
            activation = self.policies.rollback(document.strip(), by=actor.recorded_as)
        except PolicyError as error:  # not an admin, no such document, nothing to go back to
            return Settled(None, str(error))
        return Settled(activation.version, activation.as_text())
