"""`python -m grutext.cli ...` runs the `grutext` command."""

from grutext.cli.main import main

raise SystemExit(main())
