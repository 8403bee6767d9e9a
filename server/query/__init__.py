"""The compiled read path: a GraphQL query becomes one SQL statement that builds the response JSON.

`kinds` names what a content field is to a reader, `plan` turns a GraphQL document into a plan,
`sql` turns a plan and its arguments into the statement, `run` executes it inside the request's
org-scoped transaction. The `where` language and sorts come from `server.content.filters`, shared
with the local API.
"""
