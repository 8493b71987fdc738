"""Teams' own marks on an answer: numbered citations with hover cards, and the "AI generated"
label. Both travel in one `https://schema.org/Message` entity beside the message text, whose
`[1]`, `[2]` markers Teams turns into the numbered references.

Teams caps a citation's document name at 80 characters and its abstract at 160, and shows at
most three keywords of 28 characters each; longer text is shortened here rather than left for
Teams to refuse or cut mid-word.
"""

from __future__ import annotations

from microsoft_agents.activity.entity.ai_entity import (
    AIEntity,
    ClientCitation,
    ClientCitationAppearance,
)

from bot.models import Answer, Citation

MESSAGE_ENTITY = "https://schema.org/Message"
#: What makes Teams show its "AI generated" label on a message.
AI_GENERATED = "AIGeneratedContent"
MAX_NAME_CHARS = 80
MAX_ABSTRACT_CHARS = 160
MAX_KEYWORDS = 3
MAX_KEYWORD_CHARS = 28
#: The answer sources written by a language model; extractive answers quote the policy
#: verbatim and reviewed ones are the policy team's own words.
AI_SOURCES = frozenset({"llm"})


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # At a word boundary when there is one in the last fifth, so no word is split.
    space = cut.rfind(" ")
    if space >= limit * 4 // 5:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def is_ai_generated(answer: Answer) -> bool:
    return answer.source in AI_SOURCES


def markers(answer: Answer) -> str:
    """The in-text references, one per cited clause: "[1] [2]"."""
    return " ".join(f"[{position}]" for position in range(1, len(answer.citations) + 1))


def citation_name(citation: Citation, *, with_document: bool) -> str:
    """The clause's section reference (and its document's name when several are cited)."""
    document = citation.document_title or citation.document
    reference = citation.reference or document
    if with_document and citation.reference:
        reference = f"{document}, {citation.reference}"
    return shorten(reference, MAX_NAME_CHARS)


def claim(position: int, citation: Citation, *, with_document: bool) -> ClientCitation:
    keywords = [
        shorten(word, MAX_KEYWORD_CHARS)
        for word in (citation.section, citation.document_title or citation.document)
        if word
    ][:MAX_KEYWORDS]
    return ClientCitation(
        position=position,
        appearance=ClientCitationAppearance(
            name=citation_name(citation, with_document=with_document),
            abstract=shorten(citation.text, MAX_ABSTRACT_CHARS),
            keywords=keywords or None,
        ),
    )


def message_entity(answer: Answer, *, cited: bool = True) -> AIEntity | None:
    """The Message entity for an answer: its citations (when `cited`: the text carries their
    markers), and the AI label when a model wrote it; None when it has neither."""
    ai_generated = is_ai_generated(answer)
    cited = cited and bool(answer.citations)
    if not cited and not ai_generated:
        return None
    several_documents = len({c.document for c in answer.citations}) > 1
    return AIEntity(
        # Always given: the SDK's default is the AI label, which an answer quoting the
        # policy verbatim must never carry.
        additional_type=[AI_GENERATED] if ai_generated else [],
        citation=[
            claim(position, citation, with_document=several_documents)
            for position, citation in enumerate(answer.citations, start=1)
        ]
        if cited
        else None,
    )
