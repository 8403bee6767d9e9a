"""Running a plan: arguments -> one statement -> the response body, as text from PostgreSQL.

`bind` checks the arguments exactly as the resolvers and the local API do and builds the statement;
`server/query/round_trip.py` runs it in the request's org-scoped unit of work, one statement that
also opens it. Every root field is one scalar subquery of that statement, and the JSON comes back
as text that goes into the response body untouched.

The compiled path serves the happy path only. Whenever the resolver path would answer something
other than data (an invalid argument, a missing capability, a database error), `Fallback` is raised
before anything is sent, and the request runs through Strawberry, which answers it as it always did.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError, VariableNode, get_argument_values
from graphql.execution.values import get_variable_values
from strawberry.types.arguments import convert_arguments

from server.content.filters import SortKey, SqlParams, compile_sort_keys, compile_where
from server.content.validation import UUID_PATTERN
from server.engine.context import parse_id
from server.errors import CMSError
from server.model.names import graphql_name
from server.model.reading import (
    DEFAULT_DEPTH,
    DEFAULT_LIMIT,
    DEFAULT_PERSPECTIVE,
    check_depth,
    check_page,
    check_perspective,
)
from server.model.reference_paths import paths_json
from server.query.plan import STATEMENTS_PER_PLAN, Plan, Planner, RootField
from server.query.sql import (
    NotCompilable,
    Scope,
    Selection,
    SelectionCompiler,
    literal,
    page_columns,
    paths_source,
    perspective_condition,
    reads_total,
    render,
    singleton_row,
)
from server.query.where_input import where_json

if TYPE_CHECKING:
    from graphql import FieldNode

    from server.access.auth import Principal

# `documents`' own default depth (`server/graphql/schema.py`); the others are the resolvers'.
DOCUMENTS_DEFAULT_DEPTH = 0


class Fallback(Exception):  # noqa: N818 (a signal: take the resolver path)
    """This request is answered by the resolver path."""


def read_name(sql: str) -> str:
    """The prepared read's name: a digest of its text, so one text has one name on every session."""
    return "cms_read_" + hashlib.blake2b(sql.encode(), digest_size=12).hexdigest()


@dataclass
class Statement:
    """One operation's statement: its text, bind values, and what the caller must be allowed."""

    sql: str
    args: list[Any]
    keys: list[str]
    reads_drafts: bool = False
    reads_assets: bool = False
    capabilities: set[str] = field(default_factory=lambda: {"document.read"})
    # (variable, index in `args`) of the ids bound from `Plan.id_variables`.
    id_arguments: list[tuple[str, int]] = field(default_factory=list)
    # The name `cms_read` prepares `sql` under (`server/query/round_trip.py`).
    name: str = ""
    # The same read with one more column: the documents it was built from (`keys_column`), for
    # the surrogate keys of cacheable responses (`server/delivery/caching.py`), and its name.
    keyed_sql: str = ""
    keyed_name: str = ""
    # The document types read as lists (a publish of any document of such a type changes them).
    list_types: set[str] = field(default_factory=set)
    # A `referencedBy` page: it changes when any document starts or stops referencing its target,
    # which no surrogate key names, so the response is not for shared caches.
    reads_back_references: bool = False
    # (SQL of `(id, depth)` rows, the roots of the documents read) for `keys_column`.
    key_sources: list[str] = field(default_factory=list)
    # Each list page's rows as `tenant_rows` merges them, and as one organization's walk reads
    # them: the texts `for_one_organization` puts in place of the former.
    one_organization_forms: tuple[tuple[str, str], ...] = ()

    def for_one_organization(self) -> Statement:
        """The same read for a caller whose facts give it one organization to read: each list
        page read by that organization's walk alone, without the merge."""
        if not self.one_organization_forms:
            return self
        bound = object.__new__(Statement)
        bound.__dict__.update(self.__dict__)
        bound.sql, bound.name = _one_organization_text(self.sql, self.one_organization_forms)
        return bound


@functools.lru_cache(maxsize=1024)
def _one_organization_text(sql: str, forms: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    for merged, alone in forms:
        sql = sql.replace(merged, alone)
    return sql, read_name(sql)


def bind(
    planner: Planner, plan: Plan, variables: Mapping[str, Any] | None, *, max_page_size: int
) -> Statement:
    """The statement for one request of `plan`; `Fallback` when the resolver path must answer.

    Bound statements are kept per plan and variables, the values of `Plan.id_variables` aside:
    a statement bound for one id serves another with that id as its bind value.
    """
    given = dict(variables or {})
    shape = {name: None if name in plan.id_variables else value for name, value in given.items()}
    key = orjson.dumps(shape, option=orjson.OPT_SORT_KEYS) if shape else b""
    cached: Statement | None = plan.statements.get(key)
    if cached is not None:
        plan.statements.move_to_end(key)
        return _with_ids(cached, given)
    statement = _bind(planner, plan, variables, max_page_size=max_page_size)
    plan.statements[key] = statement
    if len(plan.statements) > STATEMENTS_PER_PLAN:
        plan.statements.popitem(last=False)
    return statement


def _with_ids(statement: Statement, variables: dict[str, Any]) -> Statement:
    if not statement.id_arguments:
        return statement
    args = list(statement.args)
    for name, index in statement.id_arguments:
        value = variables.get(name)
        # What coercing an `ID` and `parse_id` accept; anything else is the resolvers' to refuse.
        if isinstance(value, str) and UUID_PATTERN.fullmatch(value):
            # An id as `parse_id` would write it (other spellings go through it): the driver
            # binds the text as it binds a UUID.
            args[index] = value
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise Fallback("id")
        try:
            args[index] = parse_id(str(value))
        except CMSError as exc:
            raise Fallback("id") from exc
    # A shallow copy: `dataclasses.replace` would run `__init__` over every field, and
    # `copy.copy` goes through the pickling protocol, each several microseconds per request.
    bound = object.__new__(Statement)
    bound.__dict__.update(statement.__dict__)
    bound.args = args
    return bound


def _bind(
    planner: Planner, plan: Plan, variables: Mapping[str, Any] | None, *, max_page_size: int
) -> Statement:
    schema = planner.schema._schema
    coerced = get_variable_values(
        schema, plan.operation.variable_definitions or (), dict(variables or {})
    )
    if isinstance(coerced, list):
        raise Fallback("variables")
    binder = _Binder(planner, plan, coerced, max_page_size)
    try:
        return binder.statement()
    except (CMSError, NotCompilable, GraphQLError, TypeError, ValueError) as exc:
        raise Fallback(str(exc)) from exc


class _Binder:
    def __init__(self, planner: Planner, plan: Plan, variables: Any, max_page_size: int) -> None:
        self.planner = planner
        self.plan = plan
        self.variables = variables
        self.max_page_size = max_page_size
        self.registry = planner.generated.registry
        self.params = SqlParams()
        self.selection_values = tuple(
            repr(variables.coerced.get(name)) for name in plan.selection_variables
        )
        self.one_organization_forms: list[tuple[str, str]] = []

    def compiler(self) -> SelectionCompiler:
        return SelectionCompiler(
            self.planner.schema._schema,
            self.planner.generated,
            self.plan,
            self.variables,
            max_page_size=self.max_page_size,
        )

    def statement(self) -> Statement:
        roots = self.compiler().collect_root(self.plan.operation.selection_set)
        if not roots:
            raise Fallback("no root field")
        statement = Statement(sql="", args=[], keys=[])
        columns = []
        for key, nodes in roots.items():
            root = self.planner.roots.get(nodes[0].name.value)
            if root is None:
                raise Fallback("not a document read")
            columns.append(f"({self.root(key, root, nodes, statement)})::text")
            statement.keys.append(key)
        if statement.reads_assets:
            statement.capabilities.add("asset.read")
        statement.sql = (
            f"SELECT ARRAY[{', '.join(columns)}] FROM {paths_source(paths_json(self.registry))}"
        )
        statement.name = read_name(statement.sql)
        columns.append(keys_column(statement.key_sources))
        statement.keyed_sql = "SELECT ARRAY[" + ", ".join(columns) + "]"
        statement.keyed_name = read_name(statement.keyed_sql)
        statement.args = self.params.values
        statement.one_organization_forms = tuple(self.one_organization_forms)
        return statement

    def arguments(self, nodes: list[FieldNode]) -> dict[str, Any]:
        schema = self.planner.schema
        name = nodes[0].name.value
        definition = schema._schema.query_type.fields[name]  # type: ignore[union-attr]
        raw = get_argument_values(definition, nodes[0], self.variables)
        strawberry_field = schema.get_field_for_type(name, "Query")
        assert strawberry_field is not None
        converted: dict[str, Any] = convert_arguments(
            raw,
            strawberry_field.arguments,
            scalar_registry=schema.schema_converter.scalar_registry,
            config=schema.config,
        )
        return converted

    def selection(
        self,
        key: str,
        type_name: str,
        nodes: list[FieldNode],
        depth: int,
        published: bool,
        statement: Statement,
        *,
        page_row: bool,
        stored: bool = True,
    ) -> str:
        """The root document's JSON expression (alias `d0`), memoised per plan; what it reads is
        noted on `statement`."""
        memo = (key, depth, published, page_row, stored, self.selection_values)
        selection: Selection | None = self.plan.selections.get(memo)
        if selection is None:
            compiler = self.compiler()
            cls = graphql_name(type_name)
            scope = Scope("d0", depth, ("d0",), published, page_row=page_row, stored=stored)
            selection = compiler.selection(
                compiler.document(type_name, compiler.collect(cls, nodes), scope)
            )
            self.plan.selections[memo] = selection
        statement.reads_assets |= selection.reads_assets
        statement.reads_drafts |= selection.reads_drafts
        statement.reads_back_references |= selection.reads_back_references
        return selection.sql

    def root(self, key: str, root: RootField, nodes: list[FieldNode], statement: Statement) -> str:
        args = self.arguments(nodes)
        if root.kind == "documents":
            return self.documents(args, nodes, statement)
        assert root.type_name is not None
        type_name = root.type_name
        perspective = check_perspective(args.get("perspective") or DEFAULT_PERSPECTIVE)
        published = perspective == "published"
        statement.reads_drafts |= not published
        depth_arg = args.get("depth")
        depth = check_depth(DEFAULT_DEPTH if depth_arg is None else depth_arg)
        if root.kind == "singleton":
            obj = self.selection(
                key, type_name, nodes, depth, published, statement, page_row=True, stored=False
            )
            return f"SELECT {obj} FROM ({singleton_row(type_name, published)}) d0"
        if root.kind == "one":
            document_id = parse_id(args.get("id"))
            arguments = nodes[0].arguments or ()
            id_node = next((a.value for a in arguments if a.name.value == "id"), None)
            if isinstance(id_node, VariableNode) and id_node.name.value in self.plan.id_variables:
                statement.id_arguments.append((id_node.name.value, len(self.params.values)))
            obj = self.selection(key, type_name, nodes, depth, published, statement, page_row=True)
            id_param = self.params.add(document_id)
            statement.key_sources.append(f"SELECT {id_param}::uuid, {depth}")
            return (
                f"SELECT {obj} FROM (SELECT {page_columns(published)} FROM cms_documents d"
                f" WHERE d.id = {id_param} AND d.type = {literal(type_name)}"
                f" AND {perspective_condition('d', published)} OFFSET 0) d0"
            )
        where = args.get("where")
        where_value = where_json(where) if where is not None else None
        sort = args.get("sort")
        limit_arg, offset_arg = args.get("limit"), args.get("offset")
        limit, offset = check_page(
            DEFAULT_LIMIT if limit_arg is None else limit_arg,
            offset_arg or 0,
            max_limit=self.max_page_size,
        )
        sort_value = list(sort) if sort else None
        if root.kind == "page" and not self.page_reads_rows(type_name, nodes):
            # Nothing selected reads the rows: check the filter as the resolvers would, no more.
            self.condition(type_name, where_value, perspective, SqlParams())
            compile_sort_keys(
                self.registry, type_name, sort_value, params=SqlParams(), perspective=perspective
            )
            condition, order = "", []
        else:
            condition = self.condition(type_name, where_value, perspective)
            order = compile_sort_keys(
                self.registry, type_name, sort_value, params=self.params, perspective=perspective
            )
        statement.list_types.add(type_name)
        if condition:
            statement.key_sources.append(self.key_rows(condition, order, limit, offset, depth))
        if root.kind == "all":
            obj = self.selection(key, type_name, nodes, depth, published, statement, page_row=True)
            return self.page_rows(obj, condition, order, limit, offset, published)
        return self.page(
            key, type_name, nodes, condition, order, limit, offset, depth, published, statement
        )

    def page_reads_rows(self, type_name: str | None, nodes: list[FieldNode]) -> bool:
        """Whether a page's selection needs its rows or its count (else only its arguments)."""
        compiler = self.compiler()
        page_class = "DocumentPage" if type_name is None else f"{graphql_name(type_name)}Page"
        reading = {"docs", "totalDocs", "totalPages", "hasNextPage"}
        return any(n[0].name.value in reading for n in compiler.collect(page_class, nodes).values())

    def condition(
        self, type_name: str, where: Any, perspective: Any, params: SqlParams | None = None
    ) -> str:
        compiled = compile_where(
            self.registry,
            type_name,
            where,
            params=self.params if params is None else params,
            perspective=perspective,
        )
        published = perspective == "published"
        return f"d.type = {literal(type_name)} AND {perspective_condition('d', published)}" + (
            f" AND ({compiled})" if compiled else ""
        )

    def page_rows(
        self,
        obj: str,
        condition: str,
        order: Sequence[SortKey],
        limit: int,
        offset: int,
        published: bool,
    ) -> str:
        rows = self.tenant_rows(page_columns(published), condition, order, limit, offset)
        return (
            f"SELECT coalesce(json_agg({obj} ORDER BY d0.cms_n), '[]'::json)"
            f" FROM (SELECT d.*, row_number() OVER () AS cms_n FROM ({rows}) d) d0"
        )

    def tenant_rows(
        self, columns: str, condition: str, order: Sequence[SortKey], limit: int, offset: int
    ) -> str:
        """`tenant_rows`, noting its form for one organization (`Statement.for_one_organization`)."""
        merged = tenant_rows(columns, condition, order, limit, offset)
        alone = tenant_rows(columns, condition, order, limit, offset, one_organization=True)
        self.one_organization_forms.append((merged, alone))
        return merged

    def key_rows(
        self, condition: str, order: Sequence[SortKey], limit: int, offset: int, depth: int
    ) -> str:
        """The ids of a page's rows, with the depth its references are read to."""
        rows = self.tenant_rows("d.id", condition, order, limit, offset)
        return f"(SELECT d.id, {depth} FROM ({rows}) d)"

    def page(
        self,
        key: str,
        type_name: str,
        nodes: list[FieldNode],
        condition: str,
        order: Sequence[SortKey],
        limit: int,
        offset: int,
        depth: int,
        published: bool,
        statement: Statement,
        *,
        documents: bool = False,
    ) -> str:
        compiler = self.compiler()
        page_class = "DocumentPage" if documents else f"{graphql_name(type_name)}Page"
        fields = compiler.collect(page_class, nodes)

        def docs(docs_nodes: list[FieldNode]) -> str:
            if documents:
                obj = render("d0", Scope("d0", depth, ("d0",), published, page_row=True))
            else:
                obj = self.selection(
                    f"{key}.{docs_nodes[0].alias.value if docs_nodes[0].alias else 'docs'}",
                    type_name,
                    docs_nodes,
                    depth,
                    published,
                    statement,
                    page_row=True,
                )
            return f"({self.page_rows(obj, condition, order, limit, offset, published)})"

        pairs = compiler.page_fields(page_class, fields, docs, "c.total", limit, offset)
        counted = reads_total(fields)
        # Counted by the organizations' own index entries (`tenant_rows` says why), not by a walk
        # of every tenant's: for an organization with a tenth of the posts, 1.0 ms -> 0.11.
        readable = "d.organization_id = ANY ((SELECT cms_readable_orgs())::uuid[])"
        source = (
            f"(SELECT count(*) AS total FROM cms_documents d WHERE {readable} AND {condition}) c"
            if counted
            else "(SELECT 1) c"
        )
        return f"SELECT {compiler.object(pairs)} FROM {source}"

    def documents(self, args: dict[str, Any], nodes: list[FieldNode], statement: Statement) -> str:
        requested = args.get("type")
        schema_type = self.registry.get(requested) if isinstance(requested, str) else None
        if schema_type is None or not schema_type.is_document:
            raise Fallback("unknown document type")
        type_name = schema_type.name
        where = args.get("where")
        if where is not None and not isinstance(where, dict):
            raise Fallback("where must be an object")
        perspective = check_perspective(args.get("perspective") or DEFAULT_PERSPECTIVE)
        statement.reads_drafts |= perspective == "draft"
        depth_arg = args.get("depth")
        depth = check_depth(DOCUMENTS_DEFAULT_DEPTH if depth_arg is None else depth_arg)
        limit_arg = args.get("limit")
        limit, offset = check_page(
            DEFAULT_LIMIT if limit_arg is None else limit_arg,
            args.get("offset") or 0,
            max_limit=self.max_page_size,
        )
        reads_rows = self.page_reads_rows(None, nodes)
        params = self.params if reads_rows else SqlParams()
        condition = self.condition(type_name, where, perspective, params)
        order = compile_sort_keys(
            self.registry, type_name, args.get("sort"), params=params, perspective=perspective
        )
        statement.list_types.add(type_name)
        if reads_rows:
            statement.key_sources.append(self.key_rows(condition, order, limit, offset, depth))
        return self.page(
            "",
            type_name,
            nodes,
            condition,
            order,
            limit,
            offset,
            depth,
            perspective == "published",
            statement,
            documents=True,
        )


def tenant_rows(
    columns: str,
    condition: str,
    order: Sequence[SortKey],
    limit: int,
    offset: int,
    *,
    one_organization: bool = False,
) -> str:
    """`columns` of a page of `cms_documents d` (`condition`, `order`, `limit`, `offset`), read
    organization by organization: the page of each organization the request may read, as far as
    the page's end, merged in the page's order. Each sort value is read once, inside, and carried
    out as a column (`cms_k1`, ...) to merge by: a datetime field's value is a function call.

    A walk of the type's rows in sort order meets every tenant's rows, and Row-Level Security
    drops the others' one by one after reading each from the heap: an organization with a tenth
    of the rows read about ten for each one shown. Each organization's walk (migration 0027's indexes,
    which lead with the organization) reads only its own. The policies still apply to every row.

    `one_organization`: the page of the request's one organization, from its walk alone, for a
    caller whose facts say it reads one (`cms_one_readable_org()` raises `CM007`, the facts
    changed, when the request may read more or none): no merge to set up and run, and no sort
    values to carry out for one.

    The limit and offset are checked integers written as literals: with `LIMIT $n` PostgreSQL
    cannot reuse a generic plan for the page (its cost depends on the limit), so it would plan
    the whole statement again on every execution.
    """
    inner = ", ".join(str(key) for key in order)
    if one_organization:
        return (
            f"SELECT {columns} FROM cms_documents d"
            f" WHERE d.organization_id = (SELECT cms_one_readable_org()) AND {condition}"
            f" ORDER BY {inner} LIMIT {int(limit)} OFFSET {int(offset)}"
        )
    keys = ", ".join(f"{key.value} AS cms_k{n}" for n, key in enumerate(order, 1))
    outer = ", ".join(str(SortKey(f"d.cms_k{n}", key.direction)) for n, key in enumerate(order, 1))
    return (
        "SELECT d.* FROM unnest((SELECT cms_readable_orgs())) AS cms_o(id) CROSS JOIN LATERAL"
        f" (SELECT {columns}, {keys} FROM cms_documents d WHERE d.organization_id = cms_o.id"
        f" AND {condition} ORDER BY {inner} LIMIT {int(limit) + int(offset)}) d"
        f" ORDER BY {outer} LIMIT {int(limit)} OFFSET {int(offset)}"
    )


def keys_column(sources: list[str]) -> str:
    """One more column of a read: the documents it was built from, as `ids|types`.

    The ids are the roots (`sources`) and every document their published references lead to, as
    deep as each root reads them (the reference index, `cms_document_references`); the types are
    those documents' types. The walk runs in the read's own statement, as the request's role, so it
    sees what the read saw. It costs an index lookup per document on the way, and a page's rows are
    selected a second time: only cacheable responses ask for it.
    """
    if not sources:
        return "'|'"
    return (
        "(WITH RECURSIVE roots(id, depth) AS (" + " UNION ALL ".join(sources) + "),"
        " walk(id, level, depth) AS (SELECT id, 0, depth FROM roots"
        " UNION SELECT r.ref_id, w.level + 1, w.depth FROM walk w"
        " JOIN cms_document_references r ON r.referencer_id = w.id AND r.plane = 'published'"
        " WHERE w.level < w.depth)"
        " SELECT coalesce(string_agg(DISTINCT w.id::text, ' '), '') || '|'"
        # A lookup by primary key per document: a join here may be planned as a hash join over
        # every document of the table (the walk's size is not known when planning).
        " || coalesce(string_agg(DISTINCT (SELECT d.type FROM cms_documents d WHERE d.id = w.id),"
        " ' '), '') FROM walk w)"
    )


def allowed(caller: Principal, statement: Statement) -> bool:
    """Whether the caller may see what the statement read; if not, the resolver path answers."""
    if not statement.capabilities <= caller.capabilities:
        return False
    return not (statement.reads_drafts and caller.published_only)


def body(statement: Statement, values: list[str | None]) -> bytes:
    """`{"data":{...}}` from the JSON texts, without decoding them."""
    if len(values) == 1 and len(statement.keys) == 1:
        # Most requests read one root field.
        value = values[0]
        return f'{{"data":{{"{statement.keys[0]}":{value if value is not None else "null"}}}}}'.encode()
    parts = (
        f'"{key}":{value if value is not None else "null"}'
        for key, value in zip(statement.keys, values, strict=True)
    )
    return ('{"data":{' + ",".join(parts) + "}}").encode()
