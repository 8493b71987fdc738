"""The web console for the policy team, served by `policybot serve` under /console.

Server-rendered pages (Jinja2, autoescaped) over the core's use cases: every action a page
offers is a `PolicyBot` call with the signed-in person's `Actor`, as on Slack and Teams. Who
may enter, sessions, CSRF and the security headers are `sessions.py` and `app.py`; a page
module adds its routes through `app.PAGE_MODULES` and renders through `render.page`.
"""
