"""The content engine: the adapter contract and its PostgreSQL implementation, and the local API
(documents, assets, schedules as Python calls) that the GraphQL layer and the CLI are built on.
"""
