"""The GraphQL layer: the schema built from the content model, thin resolvers, the compiled read
path's entry, and the endpoint over HTTP. It calls the engine; it runs no SQL of its own.
"""
