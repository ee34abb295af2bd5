"""Real datastores for the sandbox: PostgreSQL with TLS client-certificate auth and least privilege.

I/O shell: this package starts processes and opens sockets. One module per concern:

* `postgres` — `PostgresServer`: one server per datastore per run (start, connection settings,
  server-certificate rotation, CRL refresh, stop);
* `pgbinaries` — finding `initdb`/`postgres` and their version;
* `pgaccount` — the OS account the server runs as (``postgres`` when we are root), file ownership;
* `pgtemplate` — `initdb` once into a cache, copied per run (cold start without `initdb`);
* `pgconfig` — ``postgresql.conf``, ``pg_hba.conf`` and client DSNs, as pure functions;
* `pgprovision` — database, schema, one role per calling workload, grants exactly from the spec,
  seed; SQL errors as ``FILE:LINE:COL`` messages;
* `pgteam` — the team's own ``pg_hba.conf`` and ``postgresql.conf`` templates, rendered in;
* `pgcatalog` — what the database really grants, read from its catalogs after the seed, and the
  ``pg_hba.conf`` and settings in force;
* `pgprocess` — spawning, readiness, confirmed reloads and shutdown of the `postgres` process;
* `errors` — `DatastoreError` (exit code 3: the environment could not start).
"""

from __future__ import annotations

from trustproof.datastores.errors import DatastoreError
from trustproof.datastores.pgbinaries import PgBinaries, find_binaries
from trustproof.datastores.pgconfig import ADMIN_ROLE
from trustproof.datastores.postgres import PostgresServer, StartTimings

__all__ = [
    "ADMIN_ROLE",
    "DatastoreError",
    "PgBinaries",
    "PostgresServer",
    "StartTimings",
    "find_binaries",
]
