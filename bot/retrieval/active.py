"""The active policy as one question (or one checked post) sees it.

The active versions are read once, then everything about that question comes from them:
retrieval, which versions an answer rests on, and how rare a word is in the policy. Rarity is
measured one way everywhere, as the lexical retriever ranks by it: clauses of the active
versions that use the word.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.models import Citation, Retrieval
from bot.retrieval.lexical import LexicalRetriever, Retriever
from bot.store.database import Storage, VersionInfo

#: Clauses one retrieval returns: as many as an LLM is shown to judge coverage from
#: (bot.answering.grounded.LLM_CLAUSES); an extractive answer cites the best of them, at most
#: POLICYBOT_MAX_CITATIONS.
RETRIEVAL_LIMIT = 8


def lexical_of(retriever: Retriever, storage: Storage) -> LexicalRetriever:
    """The lexical retriever behind `retriever`: itself, or the one a hybrid fuses with
    (`.lexical`), so its per-version word counts serve every caller. Any other retriever gets
    a new one, which counts a version's words again on first use."""
    if isinstance(retriever, LexicalRetriever):
        return retriever
    behind = getattr(retriever, "lexical", None)
    return behind if isinstance(behind, LexicalRetriever) else LexicalRetriever(storage)


@dataclass(frozen=True)
class ActivePolicy:
    versions: tuple[VersionInfo, ...]
    retriever: Retriever
    lexical: LexicalRetriever

    @classmethod
    def read(cls, storage: Storage, retriever: Retriever) -> ActivePolicy:
        return cls(tuple(storage.active_versions()), retriever, lexical_of(retriever, storage))

    @property
    def version_ids(self) -> tuple[int, ...]:
        return tuple(v.id for v in self.versions)

    def retrieve(self, text: str) -> Retrieval:
        return self.retriever.retrieve(text, self.version_ids, limit=RETRIEVAL_LIMIT)

    def policy_version(self, citations: Iterable[Citation]) -> str:
        """ "name vN (label)" of the documents the citations come from (every active one when
        nothing is cited)."""
        used = {c.document for c in citations} or {v.document for v in self.versions}
        return ", ".join(v.display for v in self.versions if v.document in used)

    def document_frequency(self, terms: Iterable[str]) -> dict[str, int]:
        """Stem -> how many active clauses (with their headings) use it."""
        return self.lexical.document_frequency(self.version_ids, terms)
