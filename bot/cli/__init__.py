"""The `policybot` command line: a thin layer over the core.

Exit codes scripts can rely on: 0 done; 1 a question was refused (empty or too long);
2 wrong usage; 3 a policy or data file could not be used; 4 the database could not be used.
Commands that start a platform (`chat`, `serve`, `slack`) import their adapter only when run, so the
core itself never loads an adapter.

One module per command group; importing this package registers every command on `main`
(the `policybot` console script, and `python -m bot.cli`).
"""

from bot.cli import answering, maintenance, platforms, policy, questions, web
from bot.cli.root import main

__all__ = ["answering", "main", "maintenance", "platforms", "policy", "questions", "web"]
