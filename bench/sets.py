"""The labeled evaluation sets, each loaded into its own in-memory store.

- bundled: eval/bundled-policy.jsonl over the bundled policy (gold by section).
- external: eval/external/<stem>.jsonl over the shared policy <stem>.md (gold by line range).
- added tuning questions: eval/tuning/<set name>.jsonl over a tuning set's own policy (the
  bundled one, or the shared policy of that stem), written later to look like what employees
  ask: long and chatty whether covered or not, near misses among the uncovered. Fitted on by
  bench/train_coverage.py beside the set's first questions (`added_tuning_questions`); a
  held-out set has none.
- blind: eval/blind/<stem>.jsonl over the same shared policies, named `blind-<stem>`: written
  before the coverage model was built, about 40% not covered (topics the policy is silent on,
  and near misses sharing its words); held out, never fitted on.
- policyqa: the PolicyQA dev split; each privacy policy's paragraphs become one Markdown
  document (written to a temporary folder at run time, never committed) and the gold is the
  line of the paragraph holding the answer span.

Sets marked `tuning` are the ones weights and the threshold were chosen on; the others are
held out and only ever measured.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.evaluation import LabeledQuestion, load_questions
from bot.models import Retrieval, StoredClause
from bot.policies import PolicyLibrary
from bot.store.database import Storage

ROOT = Path(__file__).resolve().parent.parent


def _shared_eval() -> Path:
    """The shared evaluation data: $POLICYBOT_SHARED_EVAL, a `shared/` beside the clone, or
    the workplace's /work/shared."""
    configured = os.environ.get("POLICYBOT_SHARED_EVAL", "").strip()
    if configured:
        return Path(configured)
    beside = ROOT.parent / "shared" / "eval"
    return beside if beside.is_dir() else Path("/work/shared/eval")


SHARED = _shared_eval()
SHARED_POLICIES = SHARED / "policies"
POLICYQA_DEV = SHARED / "policyqa" / "dev.json"

#: Sets the weights, vocabulary and threshold were tuned on; every other set is held out.
TUNING_SETS = frozenset({"bundled", "gitlab-team-member-social-media-policy", "osc-hatch-act-faq"})


#: Questions written later over the tuning policies, one file per tuning set (its name).
ADDED_TUNING_QUESTIONS = ROOT / "eval" / "tuning"


def embedder_trains_on_policyqa(index: int) -> bool:
    """Whether bench/train_embedder.py trains on PolicyQA dev's document at `index` (file
    order): every other one, so the rest measure the tuned embedder on policies it never saw."""
    return index % 2 == 0


Retrieve = Callable[[str, tuple[int, ...]], Retrieval]

#: Chat around a question, as (before, after). Employees pad questions ("not sure who else to
#: ask about this, ..."); those words say nothing about the policy but make a question look
#: longer and better matched. The not-covered models are fitted on the tuning questions as
#: written and wrapped in FIT_WRAPPERS, and measured, never fitted, with HELD_OUT_WRAPPERS.
Wrapper = tuple[str, str]
AS_WRITTEN: Wrapper = ("", "")
FIT_WRAPPERS: tuple[Wrapper, ...] = (
    ("hi all, ", ""),
    ("so ", ""),
    ("honest question: ", ""),
    ("i need some advice - ", ""),
    ("been thinking about this for a while. ", ""),
    ("sorry if this was asked before, ", ""),
    ("ok so my question is ", ""),
    ("", ", please help"),
    ("", " - would appreciate an answer"),
    ("", ", is that a problem or not"),
)
HELD_OUT_WRAPPERS: tuple[Wrapper, ...] = (
    ("asking for a friend: ", ""),
    ("this might be a weird one but ", ""),
    ("not sure who else to ask about this, ", ""),
    ("my manager mentioned something in a meeting and im not sure, ", ""),
    ("", " appreciate any help, really not sure"),
)


def wrap(question: LabeledQuestion, wrapper: Wrapper) -> LabeledQuestion:
    before, after = wrapper
    return replace(question, question=f"{before}{question.question}{after}")


def asked_texts(
    sets: Sequence[EvalSet], wrappers: Callable[[EvalSet], Sequence[Wrapper]]
) -> list[str]:
    """Every question of the sets as written and in each of its set's wrappers: what a
    benchmark embeds in one batch before asking."""
    return [
        wrap(q, w).question
        for s in sets
        for w in (AS_WRITTEN, *wrappers(s))
        for _, questions in s.parts
        for q in questions
    ]


@dataclass
class EvalSet:
    """Questions grouped by the policy version each is asked against, in one store."""

    name: str
    storage: Storage
    parts: list[tuple[tuple[int, ...], list[LabeledQuestion]]] = field(default_factory=list)

    @property
    def tuning(self) -> bool:
        return self.name in TUNING_SETS

    @property
    def short(self) -> str:
        return self.name.split("-")[0]

    def question_count(self) -> int:
        return sum(len(q) for _, q in self.parts)

    def clauses(self, version_ids: tuple[int, ...]) -> list[StoredClause]:
        return self.storage.clauses(version_ids)

    def all_version_ids(self) -> Iterator[tuple[int, ...]]:
        for versions, _ in self.parts:
            yield versions


def _single(name: str, policy: Path, questions: Path) -> EvalSet:
    storage = Storage.memory()
    version = PolicyLibrary(storage).load_file(policy).version
    return EvalSet(name, storage, [((version.id,), load_questions(questions))])


def added_tuning_questions(eval_set: EvalSet) -> list[LabeledQuestion]:
    """The questions eval/tuning adds to a tuning set, asked of the same policy; a held-out
    set gets none, whatever files there are."""
    if not eval_set.tuning:
        return []
    path = ADDED_TUNING_QUESTIONS / f"{eval_set.name}.jsonl"
    return load_questions(path) if path.exists() else []


def bundled_set() -> EvalSet:
    policies = sorted((ROOT / "policies").glob("*.md"))
    storage = Storage.memory()
    versions = tuple(PolicyLibrary(storage).load_file(p).version.id for p in policies)
    return EvalSet(
        "bundled", storage, [(versions, load_questions(ROOT / "eval" / "bundled-policy.jsonl"))]
    )


def external_sets() -> list[EvalSet]:
    out = []
    for questions in sorted((ROOT / "eval" / "external").glob("*.jsonl")):
        policy = SHARED_POLICIES / f"{questions.stem}.md"
        if policy.exists():
            out.append(_single(questions.stem, policy, questions))
    return out


def blind_sets() -> list[EvalSet]:
    out = []
    for questions in sorted((ROOT / "eval" / "blind").glob("*.jsonl")):
        policy = SHARED_POLICIES / f"{questions.stem}.md"
        if policy.exists():
            out.append(_single(f"blind-{questions.stem}", policy, questions))
    return out


def policyqa_set(path: Path = POLICYQA_DEV) -> EvalSet | None:
    """PolicyQA dev: one document per privacy policy, gold = the answer's paragraph line."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    storage = Storage.memory()
    library = PolicyLibrary(storage)
    eval_set = EvalSet("policyqa", storage)
    with tempfile.TemporaryDirectory(prefix="policyqa-") as folder:
        for document in data:
            lines = [f"# {document['title']} privacy policy", ""]
            questions: list[LabeledQuestion] = []
            for paragraph in document["paragraphs"]:
                line = len(lines) + 1
                lines.extend([" ".join(paragraph["context"].split()), ""])
                questions.extend(
                    LabeledQuestion(qa["question"], lines=((line, line),))
                    for qa in paragraph["qas"]
                )
            name = "policyqa-" + "".join(c if c.isalnum() else "-" for c in document["title"])
            file = Path(folder) / f"{name}.md"
            file.write_text("\n".join(lines), encoding="utf-8")
            version = library.load_file(file).version
            eval_set.parts.append(((version.id,), questions))
    return eval_set


def all_sets(include_policyqa: bool = True) -> list[EvalSet]:
    sets = [bundled_set(), *external_sets(), *blind_sets()]
    if include_policyqa:
        policyqa = policyqa_set()
        if policyqa is not None:
            sets.append(policyqa)
    return sets
