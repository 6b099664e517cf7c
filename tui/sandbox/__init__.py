"""The local sandbox behind `warroom sandbox`: real PostgreSQL, Redis, HTTP and Docker, plus fault scenarios."""
