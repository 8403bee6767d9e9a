"""`referencedBy` on every document type and on a delete's answer: the local API's back-references
as GraphQL types. Always served by the resolvers (the planner leaves operations that read it to
them)."""

from __future__ import annotations

import strawberry

from server.engine.local_api import FindResult
from server.graphql import types as static
from server.graphql.context import RequestContext
from server.graphql.typegen import document_instance


def page(context: RequestContext, result: FindResult, perspective: str) -> static.BackReferencePage:
    docs = [document_instance(context.generated, doc, perspective) for doc in result.docs]
    return static.BackReferencePage(
        docs=[doc for doc in docs if doc is not None],
        totalDocs=result.total_docs or 0,
        limit=result.limit,
        offset=result.offset,
        page=result.page,
        totalPages=result.total_pages or 0,
        hasNextPage=result.has_next_page,
        hasPrevPage=result.has_prev_page,
    )


async def referenced_by(
    info: strawberry.Info,
    document_id: str | None,
    *,
    perspective: str,
    limit: int,
    offset: int,
    depth: int,
) -> static.BackReferencePage:
    context: RequestContext = info.context
    if document_id is None:
        # A stub stands for a reference that was not followed: nothing is said about its target.
        return static.BackReferencePage(
            docs=[],
            totalDocs=0,
            limit=limit,
            offset=offset,
            page=1,
            totalPages=0,
            hasNextPage=False,
            hasPrevPage=offset > 0,
        )
    unit = await context.unit()
    result = await context.api.get_back_references(
        unit, document_id, perspective=perspective, limit=limit, offset=offset, depth=depth
    )
    return page(context, result, perspective)
