"""One request answered by the compiled read path and by the resolvers, for tests that compare them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

from server.testing import GraphQLClient


async def both_paths(
    gql: GraphQLClient, query: str, variables: dict[str, Any] | None, key: str
) -> tuple[httpx.Response, httpx.Response]:
    """The response with compiled reads on (as served), then with them off (the resolvers)."""
    endpoint = gql.app.state.graphql
    endpoint.compiled_reads = True
    compiled = await gql.post(query, variables, key=key)
    endpoint.compiled_reads = False
    try:
        reference = await gql.post(query, variables, key=key)
    finally:
        endpoint.compiled_reads = True
    assert compiled.status_code == reference.status_code
    return compiled, reference


def in_order(body: bytes) -> Any:
    """JSON with its objects as lists of pairs: key order counts (numbers as the text has them)."""
    return json.loads(body, object_pairs_hook=list, parse_float=Decimal, parse_int=Decimal)
