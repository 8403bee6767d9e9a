"""The database layer: the connection pool and transactions, the tables, the org-scoped unit of work
(`tenancy`), Row-Level Security, migrations, the embedded PostgreSQL and read replicas.

It knows nothing of documents, users or GraphQL; every other layer runs its SQL through it.
"""
