"""`python -m tui` is the same as `lcc`."""

from tui.cli import main

raise SystemExit(main())
