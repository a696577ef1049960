"""``python -m nns_callbacks``: the ``nns-summary`` command."""

from .cli import main

raise SystemExit(main())
