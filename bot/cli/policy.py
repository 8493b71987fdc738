"""`policybot policy ...`: load, compare, activate, roll back, discard and inspect policy
documents and their versions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot import messages
from bot.cli.context import EXIT_POLICY, Context, console, fail, guarded
from bot.cli.root import main
from bot.models import PolicyError
from bot.policies import names_a_version


@main.group()
def policy() -> None:
    """Load and inspect policy documents."""


@policy.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Document name (default: the file's stem).")
@click.option("--by", "uploaded_by", default="cli", show_default=True, help="Who uploads it.")
@click.option("--stage", is_flag=True, help="Only stage the new version; activate it later.")
@click.option(
    "--keep-example",
    is_flag=True,
    help="Keep the bundled example policy answering beside this one (by default the first "
    "real policy retires it).",
)
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@click.pass_obj
@guarded
def policy_load(
    ctx: Context,
    file: Path,
    name: str | None,
    uploaded_by: str,
    stage: bool,
    keep_example: bool,
    as_json: bool,
) -> None:
    """Load FILE (Markdown, text, HTML, DOCX or PDF) as a new version of its document, show
    what changed against the active version, and make it active (unless --stage). The first
    real policy loaded where only the bundled example answers retires the example."""
    bot = ctx.bot(with_policy=False)
    refuse_before_reading(file, bot.settings.max_upload_bytes)
    result = bot.policies.load_file(
        file, uploaded_by=uploaded_by, name=name, activate=not stage, keep_example=keep_example
    )
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        click.echo(result.as_text())


def refuse_before_reading(file: Path, limit_bytes: int) -> None:
    """A file over the upload limit refused by its size on disk, before a byte of it is read
    into memory (the upload check comes only after reading it whole). Anything stat cannot
    say is left to reading, which words those errors."""
    try:
        size = file.stat().st_size
    except OSError:
        return
    if file.is_file() and size > limit_bytes:
        raise PolicyError(
            f"{messages.too_large(file.name, limit_bytes)} {messages.NOTHING_CHANGED}"
        )


def typed_version(words: tuple[str, ...]) -> str:
    """A version as typed, quoted or not: `gitlab-policy v3` arrives as two arguments."""
    return " ".join(words)


@policy.command("diff")
@click.argument("version", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="The changes as one JSON object.")
@click.pass_obj
@guarded
def policy_diff(ctx: Context, version: tuple[str, ...], as_json: bool) -> None:
    """What VERSION (DOCUMENT vN, DOCUMENT@N or its id; default: the newest staged one)
    changes against the active version."""
    changes = ctx.bot(with_policy=False).policies.diff(typed_version(version) or None)
    if as_json:
        click.echo(json.dumps(changes.as_json(), ensure_ascii=False))
    else:
        click.echo(changes.as_text())


@policy.command("activate")
@click.argument("version", nargs=-1, required=True)
@click.option("--by", default="cli", show_default=True, help="Who activates it.")
@click.option(
    "--keep-example",
    is_flag=True,
    help="Keep the bundled example policy answering beside this one.",
)
@click.pass_obj
@guarded
def policy_activate(ctx: Context, version: tuple[str, ...], by: str, keep_example: bool) -> None:
    """Make VERSION (DOCUMENT vN as `policy list` shows it, DOCUMENT@N, or its id) its
    document's active version (any earlier version too, or one of a retired document)."""
    policies = ctx.bot(with_policy=False).policies
    activation = policies.activate(typed_version(version), by=by, keep_example=keep_example)
    click.echo(activation.as_text())


@policy.command("retire")
@click.argument("document")
@click.option("--by", default="cli", show_default=True, help="Who retires it.")
@click.pass_obj
@guarded
def policy_retire(ctx: Context, document: str, by: str) -> None:
    """Take DOCUMENT out of answering (recorded in its history); activating any of its
    versions brings it back."""
    click.echo(ctx.bot(with_policy=False).policies.retire(document, by=by).as_text())


@policy.command("rollback")
@click.argument("document", required=False)
@click.option("--by", default="cli", show_default=True, help="Who rolls back.")
@click.pass_obj
@guarded
def policy_rollback(ctx: Context, document: str | None, by: str) -> None:
    """Make the previously active version of DOCUMENT active again."""
    click.echo(ctx.bot(with_policy=False).policies.rollback(document, by=by).as_text())


@policy.command("discard")
@click.argument("version", nargs=-1, required=True)
@click.pass_obj
@guarded
def policy_discard(ctx: Context, version: tuple[str, ...]) -> None:
    """Delete a staged VERSION (DOCUMENT vN, DOCUMENT@N or its id) that was never active."""
    discarded = ctx.bot(with_policy=False).policies.discard(typed_version(version))
    click.echo(f"Discarded {discarded.display} ({discarded.source_name}).")


@policy.command("history")
@click.argument("document", required=False)
@click.pass_obj
@guarded
def policy_history(ctx: Context, document: str | None) -> None:
    """Versions (who uploaded what, when, with which content hash) and activations."""
    from rich.table import Table

    policies = ctx.bot(with_policy=False).policies
    events = policies.history(document)
    versions = policies.storage.versions(document)
    table = Table("document", "id", "version", "status", "label", "clauses", "uploaded", "by")
    for column in ("source", "sha256"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            v.document,
            str(v.id),
            f"v{v.number}",
            v.status,
            v.label,
            str(v.clause_count),
            v.uploaded_at,
            v.uploaded_by,
            v.source_name,
            v.content_hash[:12],
        )
    out = console()
    out.print(table)
    log = Table("document", "when", "what", "version", "id", "by")
    done = {"rollback": "rolled back to", "retire": "retired"}
    numbers = {v.id: f"v{v.number}" for v in versions}
    for event in events:
        log.add_row(
            event["document"],
            event["activated_at"],
            done.get(str(event["kind"]), "activated"),
            numbers.get(int(event["version_id"]), ""),
            str(event["version_id"]),
            event["activated_by"],
        )
    out.print(log)


@policy.command("list")
@click.pass_obj
@guarded
def policy_list(ctx: Context) -> None:
    """List documents and their versions."""
    from rich.table import Table

    versions = ctx.bot().storage.versions()
    table = Table(
        "version",
        "id",
        "label",
        "status",
        "clauses",
        "uploaded",
        "by",
        "source",
        caption="Commands take a version as DOCUMENT vN, DOCUMENT@N or its id.",
    )
    for v in versions:
        table.add_row(
            f"{v.document} v{v.number}",
            str(v.id),
            v.label,
            v.status,
            str(v.clause_count),
            v.uploaded_at,
            v.uploaded_by,
            v.source_name,
        )
    console().print(table)


@policy.command("show")
@click.argument("document", nargs=-1)
@click.pass_obj
@guarded
def policy_show(ctx: Context, document: tuple[str, ...]) -> None:
    """Print the active version's clauses, with their section references: of DOCUMENT, or of
    every active document; DOCUMENT vN (or DOCUMENT@N, or an id) prints that version's."""
    bot = ctx.bot()
    typed = typed_version(document) or None
    active = [v for v in bot.storage.active_versions() if typed in (None, v.document)]
    if typed is not None and not active:
        if bot.storage.versions(typed) or not names_a_version(typed):
            if not bot.storage.versions(typed):
                fail(f"no policy document named {typed!r}", EXIT_POLICY)
            fail(
                f"{typed} has no active version (it is retired); name one of its versions, "
                f"e.g. `policy show {typed} v1`",
                EXIT_POLICY,
            )
        active = [bot.policies.find_version(typed)]
    if not active:
        fail("no policy is active", EXIT_POLICY)
    for version in active:
        owners = f", owners: {', '.join(version.owners)}" if version.owners else ""
        status = "" if version.status == "active" else f", {version.status}"
        click.echo(f"# {version.title} — {version.display}{status}{owners}")
        for stored in bot.storage.clauses([version.id]):
            clause = stored.clause
            owner = f" [{clause.owner}]" if clause.owner else ""
            click.echo(f"\n{clause.reference}{owner}\n  {clause.text}")
