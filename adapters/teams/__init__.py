"""Microsoft Teams: `app` (the /api/messages route, the CloudAdapter, register_outbound),
`auth` (the Bot Framework token check), `handler` (the turn handler, dispatch only) and its
jobs `asking`, `uploads` and `review`, `turns` (what the jobs share), `cards` (Adaptive Cards),
`outbound` (notifier and channel posters), `loopback` and `package` (the Teams app package).

Nothing is imported here, so `policybot teams-package` needs no Agents SDK import.
"""
