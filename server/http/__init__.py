"""GraphQL over HTTP: the endpoint, content delivery's side of HTTP (persisted queries, cache
headers), and the GraphiQL page."""
