"""Slack, by job: the bolt app, its middleware, `/slack/events` and Socket Mode (`app`); the
listeners that take questions (`asking`), admins' policy files (`uploads`), the policy team's
review list (`review`) and App Home (`home`), with what they share (`listening`, `messages`);
what is sent outside a listener (`outbound`); Block Kit rendering (`blocks`).

Nothing is imported here, so a caller that needs one part loads that part only.
"""
