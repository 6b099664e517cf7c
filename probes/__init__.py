"""Read-only probes of PostgreSQL, Redis, HTTP endpoints and Docker; no UI code here."""
