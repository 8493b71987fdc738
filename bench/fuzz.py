"""`python -m bench.fuzz TARGET`: coverage-guided fuzzing (atheris) of what uploaders and askers
send: policy files through `bot.reading.ingest.read_policy`, question text through the core and the
Slack and Teams cleaning.

    python -m bench.fuzz pdf --seconds 300      # 5 minutes on the PDF reader
    python -m bench.fuzz docx CRASH_FILE        # run one saved input again (libFuzzer style)
    python -m bench.fuzz html -- -jobs=2        # anything after -- goes to libFuzzer

Targets: markdown (also as .txt), html, docx, pdf, question. A PolicyError or QuestionError is
the contract for bad input and counts as fine; any other exception, or an input that runs past
`--timeout` seconds, is a crash: libFuzzer saves it as `.fuzz/TARGET/crash-*` (or
`timeout-*`). The corpus grows in `.fuzz/TARGET/corpus` (git ignores `.fuzz/`) and is seeded at
every start with small valid documents, so the fuzzer mutates real structure. DOCX inputs are
mutated inside the package (one part at a time, stored uncompressed), since a flipped byte in
a deflated ZIP member only ever reaches the CRC check.

Needs the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import re
import sys
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.pdf import make_pdf

#: Question length limit the question target normalizes to (the shipped default).
MAX_QUESTION_CHARS = 2000
BOT_USER = "U0POLICYBOT"
FUZZ_DIR = Path(".fuzz")


# -- targets: plain functions, so tests can call them without atheris --------------------------
def _read(filename: str, data: bytes) -> None:
    from bot.models import PolicyError
    from bot.reading.clauses import MAX_CHARS
    from bot.reading.ingest import read_policy

    try:
        policy = read_policy(filename, data)
    except PolicyError as error:
        if not str(error):
            raise AssertionError("a PolicyError without a message") from error
        return
    for clause in policy.clauses:
        if not clause.text.strip() or len(clause.text) > MAX_CHARS:
            raise AssertionError(f"clause {clause.reference!r} is empty or too long")


def markdown_target(data: bytes) -> None:
    _read("policy.md", data)
    _read("policy.txt", data)


def html_target(data: bytes) -> None:
    _read("policy.html", data)


def docx_target(data: bytes) -> None:
    _read("policy.docx", data)


def pdf_target(data: bytes) -> None:
    _read("policy.pdf", data)


def _text(data: bytes) -> str:
    """Any str a platform can deliver, lone surrogates included (JSON allows "\\ud800")."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def question_target(data: bytes) -> None:
    from microsoft_agents.activity import Activity, ChannelAccount, Entity

    from adapters.slack import asking as slack
    from adapters.slack import blocks as slack_blocks
    from adapters.teams import turns
    from bot.models import QuestionError
    from bot.text import normalize_question

    text = _text(data)
    bot = {"id": "28:policybot", "name": "PolicyBot"}
    activity = Activity(
        type="message",
        text=text,
        recipient=ChannelAccount(**bot),
        entities=[
            Entity.model_validate(
                {"type": "mention", "text": "<at>PolicyBot</at>", "mentioned": bot}
            )
        ],
    )
    slack_blocks.escape(text)
    for raw in (text, slack.question_text(text, BOT_USER), turns.question_text(activity)):
        try:
            question = normalize_question(raw, MAX_QUESTION_CHARS)
        except QuestionError as error:
            if not str(error):
                raise AssertionError("a QuestionError without a message") from error
            continue
        if not question or len(question) > MAX_QUESTION_CHARS or question != question.strip():
            raise AssertionError(f"normalized question out of bounds: {question[:80]!r}")
        if any(ord(c) < 32 or ord(c) == 127 for c in question):
            raise AssertionError(f"control character left in {question[:80]!r}")
        question.encode("utf-8")  # a lone surrogate left in would be refused by the log


# -- seeds ---------------------------------------------------------------------------------------
_SECTIONS = [
    ("1 Purpose", ["This policy covers social media and electronic communication."]),
    ("2 Personal accounts", ["Do not post confidential information.", "Say views are your own."]),
    ("2.1 Customers", ["Never share customer data; ask Legal first."]),
]


def markdown_seeds() -> list[bytes]:
    body = "\n\n".join(
        f"## {heading}\n\n" + "\n".join(f"- {line}" for line in lines)
        for heading, lines in _SECTIONS
    )
    front = "---\ntitle: Social media policy\nversion: 2024-01\nowners: [legal]\n---\n"
    table = "\n\n| Channel | Who may post |\n| --- | --- |\n| LinkedIn | Marketing |\n"
    return [
        f"{front}# Social media policy\n\n{body}{table}".encode(),
        b"SOCIAL MEDIA POLICY\n\n1. Purpose\nBe careful.\n\n2. Rules\n(a) No secrets.\n",
        "# Política\n\n1.1 Não publique dados de clientes. ✓\r\n".encode(),
    ]


def html_seeds() -> list[bytes]:
    sections = "".join(
        f"<h2>{heading}</h2><ul>" + "".join(f"<li>{line}" for line in lines) + "</ul>"
        for heading, lines in _SECTIONS
    )
    return [
        (
            "<!doctype html><html><head><meta charset='utf-8'><title>Social media policy"
            "</title><style>p{}</style></head><body><h1>Social media policy</h1>"
            f"{sections}<p>Ask <b>Legal</b>&nbsp;first.</p><table><tr><th>Channel<th>Who"
            "<tr><td>LinkedIn<td>Marketing</table><script>x()</script></body></html>"
        ).encode(),
        b'<meta charset="latin-1"><p>Caf\xe9 rules: <ol><li>one<li>two</ol>',
    ]


def _stored_zip(members: Iterable[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as package:
        for name, body in members:
            package.writestr(name, body)
    return out.getvalue()


def _zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return [(info.filename, package.read(info)) for info in package.infolist()]


#: A multilevel list as Word numbers headings with ("1", "1.1", "(a)"): the reader counts it.
_NUMBERING = (
    '<w:abstractNum {ns} w:abstractNumId="90">'
    '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/>'
    '</w:lvl><w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="decimal"/>'
    '<w:lvlText w:val="%1.%2"/></w:lvl><w:lvl w:ilvl="2"><w:start w:val="1"/>'
    '<w:numFmt w:val="lowerLetter"/><w:lvlText w:val="(%3)"/></w:lvl></w:abstractNum>'
)


def docx_seeds() -> list[bytes]:
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    document.add_paragraph("Social media policy", style="Title")
    numbering = document.part.numbering_part.element
    numbering.insert(0, parse_xml(_NUMBERING.format(ns=nsdecls("w"))))
    numbering.append(
        parse_xml(f'<w:num {nsdecls("w")} w:numId="90"><w:abstractNumId w:val="90"/></w:num>')
    )
    for heading, lines in _SECTIONS:
        level = heading.count(".")
        title = document.add_heading(heading.split(" ", 1)[1], level=level + 1)
        title._p.get_or_add_pPr().append(
            parse_xml(
                f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="90"/></w:numPr>'
            )
        )
        for line in lines:
            document.add_paragraph(line, style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip(table._cells, ["Channel", "Who", "LinkedIn", "Marketing"], strict=True):
        cell.text = text
    document.core_properties.title = "Social media policy"
    plain = docx.Document()
    plain.add_paragraph("SOCIAL MEDIA POLICY").runs[0].bold = True
    plain.add_paragraph("Do not post secrets.")
    packages = []
    for each in (document, plain):
        buffer = io.BytesIO()
        each.save(buffer)
        packages.append(_small_docx(buffer.getvalue()))
    return packages


#: The parts a seed keeps: the rest of python-docx's template (themes, fonts, a thumbnail,
#: 800 KB of unused styles) would only slow the fuzzer down.
_DOCX_PARTS = {
    "[Content_Types].xml",
    "_rels/.rels",
    "docProps/core.xml",
    "word/document.xml",
    "word/_rels/document.xml.rels",
    "word/styles.xml",
    "word/numbering.xml",
}


def _small_docx(data: bytes) -> bytes:
    """The package with only the parts the reader looks at and only the styles used, stored."""
    from lxml import etree

    members = dict(_zip_members(data))
    document = members["word/document.xml"].decode()
    used = set(re.findall(r'w:(?:pStyle|rStyle|tblStyle) w:val="([^"]+)"', document))
    styles = etree.fromstring(members["word/styles.xml"])
    w = styles.nsmap["w"]
    kept = {"Normal", "TableNormal", *used}
    for style in styles.findall(f"{{{w}}}style"):
        based_on = style.find(f"{{{w}}}basedOn")
        if style.get(f"{{{w}}}styleId") in kept and based_on is not None:
            kept.add(based_on.get(f"{{{w}}}val"))
    for child in list(styles):
        if child.tag != f"{{{w}}}style" or child.get(f"{{{w}}}styleId") not in kept:
            styles.remove(child)
    members["word/styles.xml"] = etree.tostring(styles, xml_declaration=True, standalone=True)
    for rels, folder in (("_rels/.rels", ""), ("word/_rels/document.xml.rels", "word/")):
        members[rels] = _drop_relationships(members[rels], folder)
    return _stored_zip((n, b) for n, b in members.items() if n in _DOCX_PARTS)


def _drop_relationships(rels: bytes, folder: str) -> bytes:
    """The relationships part without those to parts the seed leaves out."""
    return re.sub(
        rb"<Relationship [^>]*Target=\"/?([^\"]+)\"[^>]*/>",
        lambda m: m[0] if folder + m[1].decode() in _DOCX_PARTS else b"",
        rels,
    )


def pdf_seeds() -> list[bytes]:
    lines = [line for heading, body in _SECTIONS for line in (heading, *body)]
    return [
        make_pdf(
            [["Social media policy", *lines, "Page 1 of 2"], [*lines, "Page 2 of 2"]], "Policy"
        ),
        make_pdf([["1. Purpose", "\u2022 Be careful online.", "(a) No secrets."]]),
    ]


def question_seeds() -> list[bytes]:
    return [
        b"may I post photos from the offsite?",
        f"<@{BOT_USER}> can I tweet about <!channel> revenue?\x07".encode(),
        "<at>PolicyBot</at> may I share &amp; like <at>Pat</at>'s post?\u200b".encode(),
        b"   \n\t ",
    ]


# -- the docx mutator ----------------------------------------------------------------------------
def mutate_docx(
    data: bytes, max_size: int, seed: int, mutate: Callable[[bytes, int], bytes]
) -> bytes:
    """Mutate one part of the package (or, now and then, the ZIP itself) with `mutate`."""
    rng = random.Random(seed)
    try:
        members = _zip_members(data)
    except Exception:  # not (or no longer) a ZIP: plain byte mutation
        return mutate(data, max_size)
    if not members or rng.random() < 0.1:
        return mutate(data, max_size)
    # The parts the reader interprets, more often than the rest.
    weights = [8 if name.startswith("word/") else 1 for name, _ in members]
    index = rng.choices(range(len(members)), weights)[0]
    name, body = members[index]
    members[index] = (name, mutate(body, max(2 * len(body), 256)))
    out = _stored_zip(members)
    return out if len(out) <= max_size else data


#: name -> (the entry point fed with bytes, seeds, longest input in bytes).
TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]], int]] = {
    "markdown": (markdown_target, markdown_seeds, 16_384),
    "html": (html_target, html_seeds, 16_384),
    "docx": (docx_target, docx_seeds, 262_144),
    "pdf": (pdf_target, pdf_seeds, 32_768),
    "question": (question_target, question_seeds, 8_192),
}

#: What atheris instruments for coverage: ours and the parsers the readers call.
INSTRUMENTED = ["bot", "adapters", "pypdf", "docx", "html"]


def _recording_slow(
    target: Callable[[bytes], None], work: Path, seconds: float
) -> Callable[[bytes], None]:
    """The target, saving each input slower than `seconds` as `slow-*` beside the crashes.

    libFuzzer's -timeout stops an input that never ends, but atheris's alarm can deadlock
    when it fires inside native code (lxml, re); slow inputs that do finish are kept here."""

    def run(data: bytes) -> None:
        start = time.perf_counter()
        try:
            target(data)
        finally:
            if time.perf_counter() - start > seconds:
                (work / f"slow-{hashlib.sha1(data).hexdigest()}").write_bytes(data)

    return run


def write_seeds(target: str, corpus: Path) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = TARGETS[target][1]()
    for seed in seeds:
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()[:12]}").write_bytes(seed)
    return len(seeds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("inputs", nargs="*", help="saved inputs to run again instead of fuzzing")
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    parser.add_argument("--timeout", type=int, default=5, help="seconds one input may take")
    parser.add_argument(
        "--slow", type=float, default=2.0, help="save inputs that take longer (seconds)"
    )
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--dir", type=Path, default=FUZZ_DIR, help="corpus and crashes go here")
    args, libfuzzer_args = parser.parse_known_args(argv)
    libfuzzer_args = [a for a in libfuzzer_args if a != "--"]

    try:
        import atheris
    except ImportError:
        parser.error("atheris is not installed: pip install -e '.[bench]'")

    with atheris.instrument_imports(include=INSTRUMENTED):
        # The readers import their parsers on first use: import them here to instrument them.
        import docx  # noqa: F401
        import pypdf  # noqa: F401

        import bot.core
        import bot.reading.ingest  # noqa: F401

        if args.target == "question":
            import adapters.slack.asking
            import adapters.teams.turns  # noqa: F401
    target, _, max_len = TARGETS[args.target]
    work = args.dir / args.target
    corpus = work / "corpus"
    fuzzer_argv = [
        # libFuzzer starts itself again by this command line for -minimize_crash and -fork.
        f"{sys.executable} -m bench.fuzz {args.target}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-max_len={max_len}",
        f"-artifact_prefix={work}/",
        *libfuzzer_args,
    ]
    if args.inputs:
        fuzzer_argv += args.inputs
    else:
        print(f"{write_seeds(args.target, corpus)} seeds in {corpus}", file=sys.stderr)
        fuzzer_argv += [f"-max_total_time={args.seconds}", str(corpus)]

    test_one_input = _recording_slow(target, work, args.slow)
    setup: dict[str, Any] = {}
    if args.target == "docx":
        setup["custom_mutator"] = lambda data, max_size, seed: mutate_docx(
            data, max_size, seed, atheris.Mutate
        )
    atheris.Setup(fuzzer_argv, test_one_input, **setup)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
