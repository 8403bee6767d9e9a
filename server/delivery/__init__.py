"""Content delivery around the API: HTTP caching, persisted queries, cache purges, webhooks and the
outbox worker that sends them after a change commits.
"""
