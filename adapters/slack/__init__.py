"""Slack: the bolt app and its listeners (`app`) and Block Kit rendering (`blocks`).

Nothing is imported here, so a caller that needs one part loads that part only.
"""
