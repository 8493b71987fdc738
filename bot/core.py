"""The one entry point every platform calls: a question in, a cited and logged answer out,
and the use cases around it (an answer's buttons, uploads, resolving review groups).

receive -> normalize -> retrieve clauses -> answer or log as unanswered -> (adapter) render.

Over 400 lines because it is one class, `PolicyBot`, the adapters' only way in: its methods
share the turn lock, the delivery lock and the parts built once. What can stand alone lives
beside it: the question log (bot.question_log), a question's text (bot.text), what the use
cases return (bot.use_cases), the texts (bot.messages), who may (bot.access).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot import access, messages
from bot.answering.checking import PostCheck, check_text
from bot.answering.extractive import (
    Answerer,
    Draft,
    ExtractiveAnswerer,
    citation,
    for_teams,
)
from bot.answering.grounded import GroundedAnswerer
from bot.answering.llm import ChatClient, LLMConfig
from bot.answering.outcome import Outcome, outcome_of
from bot.config import Settings
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
    LateReply,
    Notifier,
    Referral,
    ReplyAddress,
    ReviewNotice,
    ReviewPoster,
)
from bot.policies import PolicyLibrary
from bot.question_log import QuestionLog
from bot.reading.upload_worker import WorkerLimits
from bot.redaction import Redactor
from bot.retrieval.active import ActivePolicy, lexical_of
from bot.retrieval.lexical import Retriever
from bot.retrieval.semantic import build_retriever
from bot.review.grouping import question_vectors_of
from bot.review.groups import DeliveryReport, Group, ReviewError, reviewed_lead
from bot.review.queue import ReviewQueue
from bot.store.database import (
    LOGGED,
    QuestionRow,
    ReceivedQuestion,
    Storage,
    StorageError,
    VersionInfo,
)
from bot.store.liveness import ProcessMark
from bot.store.unlogged import UnloggedQuestions
from bot.text import clean_text, normalize_question, storable
from bot.use_cases import (
    Fetch,
    Fetched,
    Resolution,
    ReviewList,
    Settled,
    TeamGroup,
    Tell,
    UploadReply,
)

log = logging.getLogger(__name__)


#: What an asker can say about an answer (the buttons under it, on every platform): the one
#: definition; platforms map their buttons' ids onto these.
HELPFUL, NOT_HELPFUL, ASK_POLICY_TEAM = "helpful", "not_helpful", "ask_policy_team"
REACTIONS = (HELPFUL, NOT_HELPFUL, ASK_POLICY_TEAM)
#: An answer sent this long after its question was received says it is late: longer than
#: Slack gives an acknowledgement, and than the "Thinking…" placeholder takes to show.
LATE_AFTER = timedelta(seconds=3)
#: The kind of a received question that is a draft post to check (`check_post`), not logged.
CHECK = "check"


def policy_teams(versions: Iterable[VersionInfo], configured: Sequence[str] = ()) -> list[str]:
    """The teams that review: POLICYBOT_POLICY_TEAMS when set, else the owning teams the
    active documents name (their "owners" lines), in order, once."""
    if configured:
        return list(dict.fromkeys(configured))
    return list(dict.fromkeys(owner for v in versions for owner in v.owners if owner.strip()))


@dataclass(frozen=True)
class Delivery:
    """What `PolicyBot.receive` made of a delivery: whether it is the first (else a repeat to
    drop), and the id of the question it carries, kept until its reply goes out."""

    first: bool
    received_id: int | None = None


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
    #: This process, as the taker of the questions it receives (see bot.store.liveness).
    mark: ProcessMark = field(default_factory=lambda: ProcessMark(None))
    #: One delivery run at a time: a background retry and a reviewer's answer running side by
    #: side would both read the same pending addresses and message an asker twice.
    _delivering: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    #: One question's synchronous work (retrieval, grouping, SQLite) at a time, with a pass of
    #: the event loop between questions: a burst of questions must not hold up the server's
    #: other requests, such as acknowledging the next Slack events (retried after 3 s).
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    #: Uploads, diffs, activation and rollback; activation re-checks open questions with this
    #: bot's own retriever and threshold. Built once, from the settings the bot was made with.
    policies: PolicyLibrary = field(init=False, repr=False)
    #: The policy team's review list, grouping with this bot's retrieval and word rarity.
    review: ReviewQueue = field(init=False, repr=False)
    #: Writes every question to the log (or keeps it until the log takes writes).
    question_log: QuestionLog = field(init=False, repr=False)

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

    @classmethod
    def create(cls, settings: Settings, storage: Storage | None = None) -> PolicyBot:
        storage = storage or Storage.open(settings.database)
        answerer: Answerer = ExtractiveAnswerer(settings.max_citations)
        if settings.openai_base_url.strip() and not settings.llm_model.strip():
            # OPENAI_BASE_URL is often set for other tools; only the model opts policybot in.
            log.warning("OPENAI_BASE_URL is set but POLICYBOT_LLM_MODEL is not: extractive answers")
        if settings.llm_configured:
            answerer = GroundedAnswerer(
                ChatClient(LLMConfig.from_settings(settings)),
                max_citations=settings.max_citations,
                budget=settings.llm_budget,
                min_confidence=settings.min_confidence,
                uncertain_confidence=settings.uncertain_confidence,
                floor=settings.llm_floor,
            )
        return cls(
            settings=settings,
            storage=storage,
            unlogged=UnloggedQuestions.beside(storage.path),
            mark=ProcessMark.beside(storage.path),
            retriever=build_retriever(storage, settings.retriever),
            answerer=answerer,
        )

    async def aclose(self) -> None:
        """Release the answerer's connections (the LLM's); call it in the loop that asked."""
        self.mark.release()
        close = getattr(self.answerer, "aclose", None)
        if close is not None:
            await close()

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
        for version in self.storage.active_versions():
            titles = [
                stored.clause.section_title
                for stored in self.storage.clauses([version.id])
                if stored.clause.section_title not in ("", version.title)
            ]
            if titles:
                # From the middle: a policy's first sections are its purpose and scope.
                return messages.example_question(titles[len(titles) // 2])
        return messages.example_question("")

    def active_policy(self) -> ActivePolicy:
        """One read of the active set: a question is answered from whole versions, never a mix."""
        return ActivePolicy.read(self.storage, self.retriever)

    def claim_delivery(self, platform: str, key: str) -> bool:
        """Record that `platform` delivered `key` (an event or file id) and say whether this
        is its first delivery to any process on this database: False for a retry of one
        already claimed, which the adapter drops. Kept in the database, so it holds across
        restarts and between several server processes (the insert also prunes old keys)."""
        return self.receive(platform, key).first

    def receive(
        self,
        platform: str,
        key: str,
        question: IncomingQuestion | None = None,
        kind: str = "",
        *,
        now: datetime | None = None,
    ) -> Delivery:
        """Take a delivery before acknowledging it: `claim_delivery`, and in the same
        transaction the question it carries, if any, kept until its reply goes out (`ask`
        with `received`, then `replied`); a process stopped in between leaves it to
        `answer_left_over` on the next start. `kind` is the platform's kind of question
        (CHECK: a draft to check, never logged)."""
        row = None
        if question is not None:
            question = storable(question)  # kept before `ask` sees it: encodable here too
            row = {
                "kind": kind,
                "user_id": question.asker,
                "conversation": question.conversation,
                "text": question.text,
            }
        try:
            received_id = self.storage.receive(
                platform, key, row, taken_by=self.mark.hold(), now=now
            )
        except StorageError as error:
            # The database cannot remember it (disk full, read-only): handle it as new. A
            # retry may then be answered twice, but dropping a question nobody answered would
            # be worse.
            log.warning("handling %s %s as new: %s", platform, key, error)
            return Delivery(True)
        if received_id == -1:
            return Delivery(False)
        return Delivery(True, received_id)

    def replied(self, received_id: int | None) -> None:
        """The reply to a received question went out: it is no longer left to answer."""
        if received_id is None:
            return
        try:
            self.storage.mark_replied(received_id)
        except StorageError as error:  # answered again on the next start: late, not lost
            log.warning(
                "could not record the reply to received question %s: %s", received_id, error
            )

    async def answer_left_over(self, *, now: datetime | None = None) -> int:
        """On start: answer every question a process that is no longer running acknowledged
        and did not reply to, on the platform it was asked on (its `late_repliers`), saying
        the answer is late when it is. A question not yet logged is asked now, so logged
        once; one already logged is sent as logged, not logged again (its first reply may
        have gone out just before the process stopped: the asker would see it twice, which
        beats never). Returns how many were answered; failures are left for the next start."""
        if self.unlogged.has_pending():  # kept questions mark their received ones as logged
            try:
                self.unlogged.replay(self.question_log.log_kept)
            except StorageError as error:
                log.warning("kept questions could not be logged yet: %s", error)
        me = self.mark.hold()
        dead: dict[str, bool] = {}
        answered = 0
        for left in self.storage.unreplied():
            replier = self.late_repliers.get(left.platform)
            if replier is None or left.taken_by == me:
                continue
            if left.taken_by not in dead:
                dead[left.taken_by] = not self.mark.running(left.taken_by)
            if not dead[left.taken_by] or not self.storage.take_received(
                left.id, me, left.taken_by
            ):
                continue
            try:
                await self._answer_late(left, replier, now)
            except Exception:  # one question's failure must not stop the others
                log.exception("could not answer received question %s late", left.id)
                continue
            answered += 1
        if answered:
            log.warning("answered %d question(s) left unanswered by a stopped process", answered)
        return answered

    async def _answer_late(
        self, left: ReceivedQuestion, replier: LateReplier, now: datetime | None
    ) -> None:
        incoming = IncomingQuestion(
            text=left.text,
            platform=left.platform,
            asker=left.user_id,
            conversation=left.conversation,
        )
        reply = LateReply(
            kind=left.kind,
            address=ReplyAddress(left.platform, left.user_id, left.conversation),
            question=clean_text(left.text),
            late=(now or datetime.now(UTC)) - left.received_at > LATE_AFTER,
        )
        asked: Answer | None = None
        if left.kind == CHECK:
            try:
                reply = dataclasses.replace(reply, check=self.check_post(left.text))
            except QuestionError as error:
                reply = dataclasses.replace(reply, refusal=str(error))
        elif left.state == LOGGED and left.question_id is not None:
            reply = self._as_logged(reply, left.question_id)
        else:
            try:
                asked = await self.ask(incoming, received=left.id)
                reply = dataclasses.replace(reply, answer=asked)
            except QuestionError as error:
                reply = dataclasses.replace(reply, refusal=str(error))
            except Exception:  # logged as failed by `ask`; the asker gets the apology
                log.exception("answering received question %s failed", left.id)
        await replier.send(reply)
        self.replied(left.id)
        if asked is not None:
            await self.refer_unanswered(asked, incoming)

    def _as_logged(self, reply: LateReply, question_id: int) -> LateReply:
        try:
            logged = self.logged_answer(question_id)
        except KeyError:  # purged since: nothing left to send but the apology
            return reply
        if logged.source == "refused":
            return dataclasses.replace(reply, refusal=logged.lead)
        if logged.source == "failed":
            return reply
        return dataclasses.replace(reply, answer=logged)

    def retrieve(self, question: str) -> Retrieval:
        return self.active_policy().retrieve(question)

    async def ask(self, incoming: IncomingQuestion, *, received: int | None = None) -> Answer:
        """Answer from the active policy and log the question; QuestionError for bad input.
        `received`: the question's id from `receive`, marked logged with its log row."""
        # The one place every platform's question enters: from here on nothing in it can be
        # refused by the log, the spool or the JSON of a reply.
        incoming = storable(incoming)
        try:
            question = normalize_question(incoming.text, self.settings.max_question_chars)
        except QuestionError as error:
            self.question_log.refused(incoming, str(error), received)
            raise
        try:
            async with self._taking_turns():
                active = self.active_policy()
                retrieval = active.retrieve(question)
                profile = self.review.profile(question)
                # A question the policy team has already answered gets their answer, whatever
                # retrieval would say: they answered it because the policy alone did not.
                reviewed = self.review.best_group(profile, retrieval, status="answered")
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
                draft = await self.answerer.answer(retrieval, outcome=outcome)
                # Who reviews it is the active policy's owners, not a fixed list of teams.
                draft = for_teams(draft, policy_teams(active.versions, self.settings.policy_teams))
        except Exception as error:
            # The asker gets the adapter's apology; the question still reaches the policy team,
            # on the review list and in the platform's review channel.
            question_id = self.question_log.failed(incoming, question, error, received)
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
        async with self._taking_turns():
            answer = self.question_log.answered(
                incoming, question, retrieval, draft, active, reviewed, received
            )
            if draft.outcome.reviewed and answer.question_id is not None:
                # Just logged, so in no group: `join`, with what this turn already worked out.
                self.review.join(answer.question_id, question, retrieval, profile)
        return answer

    @contextlib.asynccontextmanager
    async def _taking_turns(self) -> AsyncIterator[None]:
        """Run the block alone, then give the event loop a pass before the next question's
        turn. Questions that arrive together would otherwise run back to back in one pass of
        the loop, and nothing else (an HTTP acknowledgement) would run until all were done."""
        async with self._turn:
            yield
            # Still holding the turn: whoever wants it now queues, and the loop polls I/O.
            await asyncio.sleep(0)

    def feedback(self, question_id: int, *, helpful: bool) -> None:
        """Helpful / Not helpful. Not helpful puts the question on the review list."""
        if helpful:
            self.storage.update_question(question_id, feedback="helpful")
        else:
            self.storage.update_question(
                question_id, feedback="not_helpful", status="open", review_reason="not_helpful"
            )
            self.review.place(question_id)

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

    def react(self, question_id: int, reaction: str) -> Referral | None:
        """An asker's reaction (one of REACTIONS) to an answer, from any platform: the
        referral for `announce` when the question goes on the review list, else None.
        KeyError when there is no such question."""
        if reaction not in REACTIONS:
            raise ValueError(f"unknown reaction {reaction!r}")
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
        row: QuestionRow | None = None
        if referral.question_id is not None:
            with contextlib.suppress(KeyError):
                row = self.storage.question(referral.question_id)
        notice = self._review_notice(
            referral.question_id, row, referral.reason, referral.question, asker, asker_name
        )
        try:
            await poster.post(notice)
        except Exception:  # any platform failure; the review list itself is unaffected
            log.exception("could not post to the %s review channel", platform)

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
        self.replied(received)
        if answer is not None:
            await self.refer_unanswered(answer, incoming)

    async def react_to_answer(
        self, actor: Actor, question_id: int | None, reaction: str, tell: Tell
    ) -> bool:
        """An answer's button pressed (one of REACTIONS; `question_id` None when the button's
        value was garbled): the reaction recorded, the presser told so (`tell`), then the
        platform's review channel told when the question went on the review list. False, and
        the presser told, when the question is gone or the reaction not taken (a rating of a
        "not covered" reply, the same reaction again: `reaction_refusal`)."""
        try:
            if question_id is None:
                raise KeyError(question_id)
            refusal = self.reaction_refusal(question_id, reaction)
            if refusal is not None:
                await tell(refusal)
                return False
            referral = self.react(question_id, reaction)
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
                name, data, uploaded_by=actor.recorded_as
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
        return ReviewList(tuple(self.review.queue(status="open")))

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
            return Resolution("", self.review.group(group_id))
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
                group = self.review.dismiss(group_id, by)
            else:
                group = self.review.answer(group_id, answer, by)
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
        self.review.answer(group_id, text, by)
        return await self.deliver_answers(group_id)

    def dismiss_group(self, group_id: int, by: str = "") -> Group:
        return self.review.dismiss(group_id, by)

    async def deliver_answers(self, group_id: int | None = None) -> DeliveryReport:
        """Send reviewed answers not yet delivered (after answering, or to retry); addresses
        past the retention period are deleted first, so nobody is contacted after it."""
        async with self._delivering:
            self.review.expire(self.settings.retention_days)
            return await self.review.deliver(self.notifiers, group_id)

    async def deliver_answers_to(self, actor: Actor, notifier: Notifier) -> DeliveryReport:
        """Reviewed answers waiting for one asker, sent through `notifier`: for a platform
        that can only reach its askers while they are there (the console, when its chat
        opens), not from `deliver_answers`."""
        async with self._delivering:
            self.review.expire(self.settings.retention_days)
            return await self.review.deliver(
                {actor.platform: notifier}, asker=(actor.platform, actor.user_id)
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
        )
