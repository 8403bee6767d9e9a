"""The compiled read path: a GraphQL query becomes one SQL statement that builds the response JSON.

`kinds` names what a content field is to a reader, `plan` turns a GraphQL document into a plan,
`sql` turns a plan and its arguments into the statement, `run` executes it inside the request's
org-scoped transaction. `filters` compiles the `where` language and sorts, for this path and for
the local API's.
"""
