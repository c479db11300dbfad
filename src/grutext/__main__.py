"""`python -m grutext ...` runs the `grutext` command (as `python -m grutext.cli` does)."""

from grutext.cli.main import main

raise SystemExit(main())
