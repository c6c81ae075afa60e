"""`python -m loopmark` runs the command line."""

from loopmark.cli import main

raise SystemExit(main())
