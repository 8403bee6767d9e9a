"""The GraphQL layer: the schema built from the content model, thin resolvers and the compiled read
path's entry. It calls the engine; it runs no SQL of its own. Its transport is `server.http`.
"""
