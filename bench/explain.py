"""EXPLAIN (ANALYZE, BUFFERS) of the statements each scenario's request ran, replayed as they ran.

Reads are replayed in a read-only transaction scoped to the scenario's organization, as the request
role, so the plans include Row-Level Security. W1's statements are replayed in one transaction that
is rolled back; it first puts the post back at the revision the draft save expected (and not
published as it is), so the replayed UPDATEs match their row as the real ones did. The floor's
statements are explained the same way, as the floor runs them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from bench import floor_sql
from bench.inprocess import Measured, Statement
from bench.scenarios import Scenario, opening_statements, update_variables
from server.engine.postgres import PostgresAdapter

_INDEX = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)")
_SEQ = re.compile(r"Seq Scan on (\w+)")
_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")


@dataclass(frozen=True)
class Explained:
    sql: str
    arguments: tuple[Any, ...]
    plan: str

    @property
    def indexes(self) -> list[str]:
        return list(dict.fromkeys(_INDEX.findall(self.plan)))

    @property
    def seq_scans(self) -> list[str]:
        return list(dict.fromkeys(_SEQ.findall(self.plan)))

    @property
    def execution_ms(self) -> float:
        found = _EXECUTION.search(self.plan)
        return float(found.group(1)) if found else 0.0


# How the recorded openings of a unit of work begin (`server.access.opening.opening_sql`).
_OPENING = "SELECT cms_open"
# The condition of a draft save without a lock (`documents._draft_save_seen`).
_SEEN = "xmin::text = $17"


class _Rollback(Exception):  # noqa: N818 (a signal, not an error)
    pass


def main_statement(scenario: Scenario, explained: list[Explained]) -> Explained:
    """The statement that finds the scenario's documents (W1: the draft save's UPDATE)."""
    if scenario.kind == "write":
        return next(e for e in explained if "UPDATE cms_documents SET draft_data" in e.sql)
    return explained[0]


async def explain_api(
    adapter: PostgresAdapter, organization_id: uuid.UUID, scenario: Scenario, measured: Measured
) -> list[Explained]:
    """EXPLAIN the statements of the scenario's first request (W1: its first pair)."""
    if scenario.kind != "write":
        statements = measured.statements[0][opening_statements(scenario.kind) :]
        async with adapter.with_org_context(organization_id, read_only=True) as tx:
            return [await _explain(tx.conn, sql, args) for sql, args in statements]
    post_id, revision = measured.saves[0]
    # The pair's statements but the openings (a save or publish in a unit of work opens it first;
    # one without runs the opening inside each statement).
    statements = [
        (sql, args)
        for sql, args in measured.statements[0] + measured.statements[1]
        if not sql.startswith(_OPENING)
    ]
    # The publish of a saved draft writes only while the document is published as the save found
    # it ($18, its last argument), and not as it is: as before the pair, which published it. (A
    # locked publish writes in either case.)
    published_hash = next(
        (args[17] for sql, args in statements if "IS NOT DISTINCT FROM $18" in sql), None
    )
    explained: list[Explained] = []
    try:
        async with adapter.with_org_context(organization_id) as tx:
            await tx.execute(
                "UPDATE cms_documents SET revision = $2, published_hash = $3 WHERE id = $1",
                uuid.UUID(post_id),
                revision,
                published_hash,
            )
            for sql, args in statements:
                if _SEEN in sql:
                    # A save without a lock writes only while the row is the version its read
                    # saw ($17): the one just put back.
                    seen = await tx.fetchval(
                        "SELECT xmin::text FROM cms_documents WHERE id = $1", uuid.UUID(post_id)
                    )
                    args = (*args[:16], seen, *args[17:])
                explained.append(await _explain(tx.conn, sql, args))
            raise _Rollback
    except _Rollback:
        pass
    return explained


async def explain_floor(
    url: str, organization_id: uuid.UUID, scenario: Scenario, post_id: str
) -> list[Explained]:
    """EXPLAIN the floor's statement(s) for the scenario, as the floor runs them."""
    conn = await asyncpg.connect(url)
    try:
        post = uuid.UUID(post_id)
        calls: list[Statement] = {
            "Q1": [(floor_sql.Q1, ())],
            "Q2": [(floor_sql.Q2, ())],
            "Q3": [(floor_sql.Q3, ("%a%", 500))],
            "Q4": [(floor_sql.Q4, (post,))],
            "Q5": [(floor_sql.Q5, ())],
        }.get(scenario.name, [])
        if scenario.kind == "write":
            revision = await conn.fetchval("SELECT revision FROM cms_documents WHERE id = $1", post)
            data = update_variables(post_id, revision, 2.5)["data"]
            calls = [
                (floor_sql.W1_UPDATE, (post, _json(data), revision)),
                (floor_sql.W1_PUBLISH, (post,)),
            ]
        transaction = conn.transaction()
        await transaction.start()
        try:
            return [await _explain(conn, sql, (organization_id, *args)) for sql, args in calls]
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def _explain(conn: Any, sql: str, arguments: tuple[Any, ...]) -> Explained:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *arguments)
    return Explained(sql=sql, arguments=arguments, plan="\n".join(row[0] for row in rows))


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def render(title: str, explained: list[Explained]) -> str:
    """A plain-text section for the results file."""
    lines = [f"## {title}", ""]
    for n, item in enumerate(explained, 1):
        lines += [f"-- statement {n}", item.sql, f"-- arguments: {item.arguments!r}", item.plan, ""]
    return "\n".join(lines)
