"""Synthetic clause corpora of any size, recombined at run time from the real policies.

Sentences of the shared evaluation policies are shuffled into clauses of 80–600 characters
under invented numbered headings. Nothing is written to the repository: the text exists only
in the in-memory database the benchmark builds.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from bench.sets import ROOT, SHARED_POLICIES
from bot.models import Clause, ParsedPolicy
from bot.reading.clauses import MAX_CHARS, MIN_CHARS, split_sentences
from bot.store.database import Storage, content_hash

_MARKUP = re.compile(r"[#>*_`|\[\]]+")


def policy_sentences() -> list[str]:
    files = sorted(SHARED_POLICIES.glob("*.md")) + sorted((ROOT / "policies").glob("*.md"))
    sentences: list[str] = []
    for path in files:
        for paragraph in path.read_text(encoding="utf-8").split("\n\n"):
            text = " ".join(_MARKUP.sub(" ", paragraph).split())
            if len(text) >= 40 and not text.startswith(("---", "title:")):
                sentences.extend(s for s in split_sentences(text) if 30 <= len(s) <= 400)
    return sentences


def headings(sentences: list[str], rng: random.Random, count: int) -> list[str]:
    words = [w for s in sentences for w in s.split() if w.isalpha() and len(w) > 3]
    return [" ".join(rng.sample(words, 3)).capitalize() for _ in range(count)]


def synthetic_policy(clause_count: int, seed: int = 7) -> ParsedPolicy:
    rng = random.Random(seed)
    sentences = policy_sentences()
    titles = headings(sentences, rng, max(1, clause_count // 8))
    clauses = []
    for ordinal in range(1, clause_count + 1):
        text = rng.choice(sentences)
        target = rng.randint(MIN_CHARS * 2, MAX_CHARS // 2)
        while len(text) < target:
            nxt = rng.choice(sentences)
            if len(text) + 1 + len(nxt) > MAX_CHARS:
                break
            text = f"{text} {nxt}"
        section = (ordinal - 1) // 8
        title = titles[section % len(titles)]
        clauses.append(
            Clause(
                text=text[:MAX_CHARS],
                section=f"{section + 1}",
                section_title=title,
                heading_path=(f"{section + 1}. {title}",),
                ordinal=ordinal,
                line_start=ordinal,
                line_end=ordinal,
            )
        )
    return ParsedPolicy(
        name=f"synthetic-{clause_count}",
        title=f"Synthetic policy ({clause_count} clauses)",
        version_label="bench",
        owners=(),
        clauses=tuple(clauses),
    )


def synthetic_store(clause_count: int, path: Path | None = None) -> tuple[Storage, int]:
    """A store holding one active synthetic version of `clause_count` clauses."""
    storage = Storage.open(path) if path else Storage.memory()
    policy = synthetic_policy(clause_count)
    version_id = storage.add_version(
        policy,
        source_name="synthetic",
        digest=content_hash(str(clause_count).encode()),
        uploaded_by="bench",
    )
    storage.activate_version(version_id)
    return storage, version_id
