"""Read-only probes of PostgreSQL, Redis, HTTP endpoints and Docker; no UI code here."""

import sys as _sys

# httpx imports its command-line tool (and with it rich, the UI's library) whenever click is
# installed, as Celery and RQ in the test extra bring it; warroom never runs that tool, and
# data access must not load UI code (tests/test_import_hygiene.py).
_sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
