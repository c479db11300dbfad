"""`python -m grutext ...` runs the `grutext` command (and `torchrun -m grutext ...` starts it on each rank)."""

from grutext.cli.main import main

raise SystemExit(main())
