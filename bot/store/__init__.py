"""Storage: all SQL (schema, policies, the question log, groups, deliveries; `Storage` in
`database.py`), and what is kept beside the database (questions it refused, which processes
are alive)."""
