"""`python -m app.cli`: the `orderlens` command."""

from app.cli import main

main()
