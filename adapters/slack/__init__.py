"""Slack: the bolt app and its listeners (`app`), what is sent outside a listener
(`outbound`), the messages both send (`messages`) and Block Kit rendering (`blocks`).

Nothing is imported here, so a caller that needs one part loads that part only.
"""
