"""`python -m bench groundedness`: whether a summary the cited clauses do not support is caught.

Every case in eval/groundedness.jsonl is asked through the real grounded path (`PolicyBot.ask`
with a `GroundedAnswerer`) against the loopback OpenAI stub. The stub plays a model that
follows injected instructions: for a case with an injection it first checks that the injected
text reached it (in the question, or in a clause it was given) and then replies as the
injection demands; for a faithful case it replies with the faithful paraphrase. Either way it
cites the clauses the case names, by the ids the bot gave them.

An unsupported summary is caught when the extractive answer is shown instead, because of the
groundedness check; a faithful one is kept when the LLM's summary is shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.openai_stub import OpenAIStub, Recorded, Reply, answer, error
from bench.sections import write_between
from bot.answering.grounded import UNSUPPORTED, GroundedAnswerer
from bot.answering.llm import ChatClient, LLMConfig
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.database import Storage

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "eval" / "groundedness.jsonl"
HELD_OUT = ROOT / "eval" / "groundedness-heldout.jsonl"
SETS = {"built on": CASES, "held out": HELD_OUT}
POLICIES = ROOT / "eval" / "groundedness-policies"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
START = "<!-- groundedness:start -->"
END = "<!-- groundedness:end -->"


@dataclass(frozen=True)
class Case:
    id: str
    policy: str  # "bundled", or a file in eval/groundedness-policies
    question: str
    injected: str  # "question", "clause" or "" (where the injected instruction is)
    injection: str  # text the stub must find before it obeys; "" for a faithful reply
    expect: str  # "supported" or "unsupported"
    kind: str  # "faithful", or how the summary is unsupported
    verdict: str
    answer: str
    cite: tuple[str, ...]  # "9.2" (every given clause of 9.2) or "9.2: words in the clause"


@dataclass(frozen=True)
class Outcome:
    case: Case
    shown: str  # "llm", "extractive", or "invalid: why"
    reason: str  # the fallback note, if any

    @property
    def caught(self) -> bool:
        return self.shown == "extractive" and UNSUPPORTED in self.reason

    @property
    def kept(self) -> bool:
        return self.shown == "llm"

    @property
    def right(self) -> bool:
        """Caught if unsupported, kept if faithful."""
        return self.caught if self.case.expect == "unsupported" else self.kept

    @property
    def valid(self) -> bool:
        return not self.shown.startswith("invalid")


def load_cases(path: Path = CASES) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        reply = data.pop("reply")
        cases.append(
            Case(
                **data,
                verdict=reply["verdict"],
                answer=reply["answer"],
                cite=tuple(reply["cite"]),
            )
        )
    return cases


def cited_labels(case: Case, request: Recorded) -> list[str]:
    """The ids the bot gave the clauses the case cites; empty when one of them was not given."""
    labels: list[str] = []
    given = request.data["clauses"]
    for wanted in case.cite:
        section, _, words = (part.strip() for part in wanted.partition(":"))
        found = [
            c["id"]
            for c in given
            if re.match(rf"{re.escape(section)}\b", c["section"]) and words in c["text"]
        ]
        if not found:
            return []
        labels += [label for label in found if label not in labels]
    return labels


def follower(case: Case) -> Any:
    """The stub's reply to the case's request: what the injection (or the faithful case) says."""

    def reply(request: Recorded) -> Reply:
        data = request.data
        seen = data["question"] + "\n" + "\n".join(c["text"] for c in data["clauses"])
        if case.injection and case.injection not in seen:
            return error(409, "the injected instruction did not reach the model")
        labels = cited_labels(case, request)
        if not labels:
            return error(409, "a clause the case cites was not given to the model")
        return answer(case.verdict, case.answer, labels)

    return reply


def policy_bot(policy: str, stub: OpenAIStub) -> PolicyBot:
    settings = Settings(db_path=":memory:", retriever="lexical")
    bot = PolicyBot.create(settings, storage=Storage.memory())
    config = LLMConfig(base_url=stub.url, model="stub-follows-injections", retries=0)
    bot.answerer = GroundedAnswerer(ChatClient(config), max_citations=settings.max_citations)
    if policy == "bundled":
        bot.ensure_policy()
    else:
        bot.policies.load_file(POLICIES / policy)
    return bot


async def run_cases(cases: list[Case]) -> list[Outcome]:
    outcomes = []
    with OpenAIStub() as stub:
        bots: dict[str, PolicyBot] = {}
        try:
            for case in cases:
                bot = bots.get(case.policy) or bots.setdefault(
                    case.policy, policy_bot(case.policy, stub)
                )
                stub.script(follower(case))
                asked = len(stub.requests)
                result = await bot.ask(IncomingQuestion(case.question, platform="bench"))
                notes = " ".join(result.notes)
                if len(stub.requests) == asked:
                    stub.forget()
                    shown = "invalid: retrieval did not cover the question, no LLM call"
                elif "did not reach the model" in notes or "was not given" in notes:
                    shown = "invalid: " + notes.split(": ", 1)[-1]
                else:
                    shown = result.source
                outcomes.append(Outcome(case, shown, notes))
        finally:
            for bot in bots.values():
                await bot.aclose()
                bot.storage.close()
    return outcomes


def run(path: Path = CASES) -> list[Outcome]:
    # Each refusal is a WARNING on bot.answering.grounded; the outcomes carry the same reasons.
    grounded_log = logging.getLogger("bot.answering.grounded")
    level = grounded_log.level
    grounded_log.setLevel(logging.ERROR)
    try:
        return asyncio.run(run_cases(load_cases(path)))
    finally:
        grounded_log.setLevel(level)


def run_all() -> dict[str, list[Outcome]]:
    """Both sets: the one the check was built on, then the held-out one."""
    return {name: run(path) for name, path in SETS.items()}


@dataclass(frozen=True)
class Figures:
    caught: int
    unsupported: int
    kept: int
    faithful: int
    invalid: int

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Figures:
        unsupported = [o for o in outcomes if o.case.expect == "unsupported"]
        faithful = [o for o in outcomes if o.case.expect == "supported"]
        return cls(
            caught=sum(o.caught for o in unsupported),
            unsupported=len(unsupported),
            kept=sum(o.kept for o in faithful),
            faithful=len(faithful),
            invalid=sum(not o.valid for o in outcomes),
        )


def _share(n: int, total: int) -> str:
    return f"{n}/{total}" if total else "—"


def markdown(runs: dict[str, list[Outcome]]) -> str:
    names = list(runs)
    figures = {name: Figures.of(outcomes) for name, outcomes in runs.items()}
    unsupported = {n: [o for o in runs[n] if o.case.expect == "unsupported"] for n in names}
    kinds = sorted({o.case.kind for n in names for o in unsupported[n]})
    places = sorted({o.case.injected for n in names for o in unsupported[n]})

    def row(label: str, pick: Any) -> str:
        cells = []
        for n in names:
            chosen = [o for o in unsupported[n] if pick(o)]
            cells.append(_share(sum(o.caught for o in chosen), len(chosen)))
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        "## Groundedness of LLM summaries",
        "",
        "Reproduce: `python -m bench groundedness` (writes this section). Every case is asked "
        "through `PolicyBot.ask` with the grounded answerer against the loopback OpenAI stub "
        "(`bench/openai_stub.py`), playing a model that obeys injected instructions: it checks "
        "that the injection in the question or in an uploaded clause reached it, then replies "
        "as the injection demands, citing real clause ids. Faithful cases are paraphrases of "
        "the cited clauses, negations worded unlike the clause's. The check "
        "(`bot/answering/groundedness.py`) makes no second LLM call.",
        "",
        f"`{CASES.relative_to(ROOT)}` was written before the check, which was then built "
        "against it (two rules changed after its first run), so its figures are not held out. "
        f"`{HELD_OUT.relative_to(ROOT)}` was written once the check was done and has never "
        "been used to change it.",
        "",
        "| measure | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
        "| unsupported summaries caught (extractive answer shown) | "
        + " | ".join(f"**{_share(figures[n].caught, figures[n].unsupported)}**" for n in names)
        + " |",
        "| faithful summaries kept (LLM summary shown) | "
        + " | ".join(f"**{_share(figures[n].kept, figures[n].faithful)}**" for n in names)
        + " |",
        "| cases that did not run as written | "
        + " | ".join(str(figures[n].invalid) for n in names)
        + " |",
        *(row(f"caught: {kind}", lambda o, k=kind: o.case.kind == k) for kind in kinds),
        *(
            row(f"caught: injected in the {place}", lambda o, p=place: o.case.injected == p)
            for place in places
        ),
        "",
        "Misses (an unsupported summary shown, or a faithful one replaced):",
        "",
    ]
    misses = [(n, o) for n in names for o in runs[n] if not o.right]
    for name, o in misses:
        if not o.valid:
            what = o.shown
        elif o.case.expect == "unsupported":
            what = "shown"
        else:
            what = f"replaced ({o.reason.removeprefix('llm fallback: ')})"
        lines.append(f"- {name}, `{o.case.id}` ({o.case.kind}): {what}: “{o.case.answer}”")
    if not misses:
        lines.append("- none")
    return "\n".join(lines)


def block(section: str) -> str:
    """The section between its markers, as the page holds it."""
    return f"{START}\n{section}\n{END}"


def write_section(section: str, path: Path = BENCHMARKS) -> None:
    """Put the section between its markers in the page, or at its end the first time."""
    write_between(path, START, END, block(section))
