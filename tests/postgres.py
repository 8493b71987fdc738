"""The throwaway PostgreSQL cluster the tests run on: bench/postgres.py's, which the bench's
storage figures (`python -m bench replicas`, `engines`) start too; the tests import it from
here, as they import the other shared fakes."""

from bench.postgres import (
    SKIP_VARIABLE,
    TEMPLATE,
    Cluster,
    PostgresMissing,
    running_cluster,
    server_binaries,
)

__all__ = [
    "SKIP_VARIABLE",
    "TEMPLATE",
    "Cluster",
    "PostgresMissing",
    "running_cluster",
    "server_binaries",
]
