"""`python -m bot.cli`, as the tests and the benchmarks run the command."""

from bot.cli import main

main()
