"""A GraphQL content API on PostgreSQL."""

__version__ = "0.1.0"
