"""The console's policy pages: documents with their versions and history (each activation's
re-check results), a version's side-by-side diff against the active one, upload, and
activate / roll back / retire, each behind a confirmation page. Admins change; the policy
team reads. Every change is a `PolicyBot` use case (`receive_upload`, `settle_upload`,
`rollback_document`, `retire_document`) with the signed-in person's Actor, so the limits,
refusals and security log are those of Slack, Teams and the CLI."""

from __future__ import annotations

from aiohttp import web

from adapters.web.identity import policy_bot, web_user
from adapters.web.render import page, redirect, refusal
from bot import messages
from bot.models import PolicyError
from bot.use_cases import ACTIVATE, ADDED, REMOVED, Fetched, Settled

#: The upload form's file field.
FILE_FIELD = "policy_file"
#: The confirmable actions: what the confirmation page asks, by action.
CONFIRM = {
    "activate": "Activate {subject}? Questions are answered from it at once.",
    "rollback": "Roll {subject} back to the version active before?",
    "retire": "Retire {subject}? Its clauses stop answering questions until a version is "
    "activated again.",
}


def _version_id(request: web.Request) -> int:
    raw = request.match_info.get("version_id", "")
    if not raw.isdigit() or len(raw) > 18:
        raise refusal(request, messages.STALE_VERSION, status=400)
    return int(raw)


async def documents(request: web.Request) -> web.Response:
    user = web_user(request)
    shown = await policy_bot(request).policy_documents(user.actor)
    if shown.value is None:
        raise refusal(request, shown.refusal, status=403)
    return page(request, "policies/documents.html", documents=shown.value, file_field=FILE_FIELD)


async def version(request: web.Request) -> web.Response:
    user = web_user(request)
    shown = await policy_bot(request).version_changes(user.actor, _version_id(request))
    if shown.value is None:
        raise refusal(request, shown.refusal, status=403 if shown.forbidden else 400)
    return page(request, "policies/version.html", changes=shown.value, added=ADDED, removed=REMOVED)


async def upload(request: web.Request) -> web.Response:
    user = web_user(request)
    bot = policy_bot(request)
    limit = bot.settings.max_upload_bytes
    if request.content_type != "multipart/form-data":
        raise refusal(request, messages.NO_FILENAME, status=400)

    async def fetch() -> Fetched:
        # The console's CSRF check has read the form already (within the server's body
        # limit, the upload limit and a margin): the file is taken from it, no larger than
        # the upload limit, only once the core knows the uploader is an admin.
        form = await request.post()
        field = form.get(FILE_FIELD)
        if not isinstance(field, web.FileField):
            raise PolicyError(messages.NO_FILENAME)
        data = field.file.read(limit + 1)
        if len(data) > limit:
            raise PolicyError(messages.too_large(field.filename or "the file", limit))
        return Fetched(field.filename or "", data)

    reply = await bot.receive_upload(user.actor, "", fetch)
    if reply.result is None:
        forbidden = reply.refusal == messages.ADMIN_ONLY
        raise refusal(request, reply.refusal, status=403 if forbidden else 400)
    target = reply.result.version
    first_line = reply.result.as_text().splitlines()[0]
    raise redirect(request, f"{_prefix(request)}/policies/versions/{target.id}", first_line)


def _prefix(request: web.Request) -> str:
    return request.app.router["policy_documents"].url_for().path.rsplit("/policies", 1)[0]


async def confirm(request: web.Request) -> web.Response:
    """The confirmation page of an action, with the POST form that does it."""
    user = web_user(request)
    action = request.match_info["action"]
    if action not in CONFIRM:
        raise web.HTTPNotFound()
    shown = await policy_bot(request).version_changes(user.actor, _version_id(request))
    if shown.value is None:
        raise refusal(request, shown.refusal, status=403 if shown.forbidden else 400)
    target = shown.value.target
    subject = target.display if action == "activate" else target.document
    return page(
        request,
        "policies/confirm.html",
        action=action,
        question=CONFIRM[action].format(subject=subject),
        version=target,
    )


async def act(request: web.Request) -> web.Response:
    user = web_user(request)
    bot = policy_bot(request)
    action = request.match_info["action"]
    version_id = _version_id(request)
    settled: Settled
    if action == "activate":
        settled = await bot.worker.run(bot.settle_upload, user.actor, version_id, ACTIVATE)
    elif action in {"rollback", "retire"}:
        try:
            document = (await bot.worker.run(bot.policies.version, version_id)).document
        except PolicyError as error:
            raise refusal(request, str(error), status=400) from None
        use_case = bot.rollback_document if action == "rollback" else bot.retire_document
        settled = await bot.worker.run(use_case, user.actor, document)
    else:
        raise web.HTTPNotFound()
    if settled.version is None and settled.text == messages.ADMIN_ONLY:
        raise refusal(request, settled.text, status=403)
    raise redirect(request, f"{_prefix(request)}/policies", settled.text)


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(prefix + "/policies", documents, name="policy_documents")
    router.add_post(prefix + "/policies/upload", upload)
    router.add_get(prefix + "/policies/versions/{version_id}", version)
    router.add_get(prefix + "/policies/versions/{version_id}/{action}", confirm)
    router.add_post(prefix + "/policies/versions/{version_id}/{action}", act)
