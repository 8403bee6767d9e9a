"""Plan -> SQL: the statement that builds a root field's JSON in PostgreSQL.

Each root field becomes one scalar subquery returning `json`; the statement selects them side by
side, so one round trip answers the whole operation. The rules are those of the resolver path
(`server/content/references.py`, `server/graphql/typegen.py`), spelled in SQL:

- Objects are `json_build_object` of the selected keys, in selection order; lists are `json_agg`
  ordered by position (`WITH ORDINALITY`) or by the page's row number.
- A content field reads `<data column>->'name'` and shows it only when it has the field's shape
  (a string for text, an integral 32-bit number for Int, ...), else null.
- A reference at remaining depth > 0 is a correlated subquery on `cms_documents` by the guarded id
  and the perspective (its type checked in the select list), excluding the ids already on its path
  from the root (they are columns in scope: no recursion). No row (absent, hidden by RLS or the
  perspective, on a cycle, of another type, or depth exhausted) gives the stub: `_ref`, the first
  target's type, `_resolved: false`, nulls (`id` too: client caches must not take it for the
  document). References are followed only where the selection reads them.
- `referencedBy` of a document is a correlated subquery on the reference index
  (`cms_document_references`) for the document's id, its page ordered as the resolvers order it
  (`server/content/back_references.py`), each referencing document a root of its own (its path
  starts at itself), shown as its own type. A stub's page is empty.
- JSON fields and `_raw` use `cms_inline` / `cms_render` (migration 0009), which apply the same
  rules to JSON of any shape. Which types a reference there may lead to comes from the content
  model's reference map (`server/model/reference_paths.py`), written once into the statement as the
  literal `cms_paths.paths` (`paths_source`), and, for a JSON field, its own node.

Only names from the content model and the GraphQL document (validated) are written into the
text; every value from the request is a bind parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
    get_argument_values,
    get_directive_values,
)
from graphql.execution.values import VariableValues

from server.errors import CMSError
from server.model.names import graphql_name
from server.model.reading import check_depth, check_page, check_perspective
from server.query import kinds
from server.query.kinds import GeneratedKinds, Kind
from server.query.plan import BACK_REFERENCES

if TYPE_CHECKING:
    from graphql import GraphQLSchema

    from server.query.plan import Plan

# The content model's reference map in the statement: `paths_source` puts it in the FROM list.
PATHS = "cms_paths.paths"
# Dates and datetimes already in the form `cms_read_date` and `cms_read_datetime` give back, as
# the API writes them: those read back as they are, without the function. Its first call in a
# transaction costs about 20 µs of PostgreSQL's CPU (PL/pgSQL prepares its expressions again in
# each transaction), a one-post read's whole transaction about 150. A date matches only when it is
# valid in every year (no 29 February), with a year of four digits from 1000; a datetime also
# needs its seconds, no fraction and a zone of `+hh:mm` or none. Whatever else, the function reads.
_VALID_DAY = (
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
AS_IS_DATE = f"'^[1-9][0-9]{{3}}-{_VALID_DAY}$'"
AS_IS_DATETIME = (
    f"'^[1-9][0-9]{{3}}-{_VALID_DAY}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    "(?:[+](?:[01][0-9]|2[0-3]):[0-5][0-9])?$'"
)
# json_build_object takes at most 100 arguments.
MAX_OBJECT_KEYS = 50

# The `Document` interface's fields.
_DOCUMENT_FIELDS = (
    "id",
    "type",
    "status",
    "createdAt",
    "updatedAt",
    "publishedAt",
    "revision",
    "publishedHash",
    "hasUnpublishedChanges",
    "_resolved",
    "_raw",
    "_id",
    "_ref",
)


# What `referencedBy` gives when an argument is left out (`server.graphql.types.Document`).
BACK_REFERENCES_LIMIT = 20
# The fields of a page of documents (`server.graphql.types.Page`) that read its total.
_COUNTED_PAGE_FIELDS = frozenset({"totalDocs", "totalPages", "hasNextPage"})


def reads_total(fields: Fields) -> bool:
    """Whether the selected fields of a page (`SelectionCompiler.page_fields`) read its total, so
    that the statement must count the documents."""
    return any(nodes[0].name.value in _COUNTED_PAGE_FIELDS for nodes in fields.values())


class NotCompilable(Exception):  # noqa: N818 (a signal: take the resolver path)
    """The selection uses something the compiled path does not serve."""


@dataclass(frozen=True)
class Selection:
    """A selection's JSON expression, and what reading it takes."""

    sql: str
    reads_assets: bool
    # A `referencedBy` in the draft perspective: a published-only caller may not read it.
    reads_drafts: bool
    reads_back_references: bool


def literal(value: str) -> str:
    """A SQL string literal of a name from the content model."""
    return "'" + value.replace("'", "''") + "'"


Fields = dict[str, list[FieldNode]]


@dataclass(frozen=True)
class Scope:
    """Where a value is read: the document's alias, its remaining depth, the aliases on its path."""

    alias: str
    remaining: int
    path: tuple[str, ...]  # aliases of the documents from the root to this one, itself included
    published: bool
    # The alias is a row of a page (`page_columns`), not of `cms_documents` itself.
    page_row: bool = False
    # False for a singleton's row, which may be the empty singleton, stored nowhere.
    stored: bool = True

    @property
    def data(self) -> str:
        return f"{self.alias}.{data_column(self.published)}"

    @property
    def is_published(self) -> str:
        a = self.alias
        has = f"{a}.has_published" if self.page_row else f"{a}.published_data IS NOT NULL"
        return f"({a}.status = 'published' AND {has})"

    def path_array(self) -> str:
        return f"ARRAY[{', '.join(f'{a}.id' for a in self.path)}]::uuid[]"


def perspective_condition(alias: str, published: bool) -> str:
    return (
        f"{alias}.status = 'published' AND {alias}.published_data IS NOT NULL"
        if published
        else "true"
    )


def data_column(published: bool) -> str:
    return "published_data" if published else "draft_data"


def page_columns(published: bool) -> str:
    """What a page's rows carry from `cms_documents d`: one data column, not both.

    The data column is handed on decompressed: a document's JSON is usually stored compressed,
    and every `->` on a compressed value decompresses all of it again, for each field shown.
    `jsonb #> '{}'` (the empty path) returns the whole value, of any JSON type, as a plain
    in-memory one: decompressed once, nothing rebuilt. (`jsonb || '{}'`, the way before it, also
    rebuilt the document, and needed a `jsonb_typeof` check that decompressed it once more:
    about 5 µs of PostgreSQL's CPU a post, 100 a page of twenty.)
    """
    column = f"d.{data_column(published)}"
    return (
        "d.id, d.organization_id, d.type, d.status, d.published_hash, d.draft_hash, d.revision,"
        " d.created_by, d.updated_by, d.published_at, d.created_at, d.updated_at,"
        f" {column} #> '{{}}' AS {data_column(published)},"
        " d.published_data IS NOT NULL AS has_published"
    )


def singleton_row(type_name: str, published: bool) -> str:
    """The singleton of `type_name` as one page row: its document in the perspective, else the
    empty singleton (`server.content.singletons.empty_row`) at the id its first save takes."""
    singleton = f"cms_singleton_id((select cms_current_org()), {literal(type_name)})"
    column = data_column(published)
    return (
        f"SELECT * FROM (SELECT {page_columns(published)}, 0 AS cms_n FROM cms_documents d"
        f" WHERE d.id = {singleton} AND d.type = {literal(type_name)}"
        f" AND {perspective_condition('d', published)}"
        f" UNION ALL SELECT {singleton}, (select cms_current_org()), {literal(type_name)},"
        " 'draft'::document_status, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL,"
        f" '{{}}'::jsonb AS {column}, false, 1) d ORDER BY cms_n LIMIT 1"
    )


def paths_source(paths: str) -> str:
    """The FROM item that names the reference map (JSON text) `PATHS` for the whole statement."""
    return f"(SELECT {literal(paths)}::jsonb AS paths) cms_paths"


def iso(column: str) -> str:
    return f"cms_iso_timestamp({column})"


def render(alias: str, scope: Scope) -> str:
    """The local API's rendering of the document at `alias` (`_raw`, `documents`)."""
    return (
        f"cms_render({alias}.id, {alias}.type::text, {alias}.status::text, {scope.data},"
        f" {scope.is_published}, {alias}.organization_id, {alias}.created_at,"
        f" {alias}.updated_at, {alias}.published_at, {alias}.published_hash, {alias}.draft_hash,"
        f" {alias}.revision, {alias}.created_by, {alias}.updated_by, {scope.remaining},"
        f" {scope.path_array()}, {'true' if scope.published else 'false'}, {PATHS})"
    )


class SelectionCompiler:
    """Builds the JSON expression of a selection; one per statement (it numbers the aliases)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        generated: GeneratedKinds,
        plan: Plan,
        variables: VariableValues,
        *,
        max_page_size: int,
    ) -> None:
        self.schema = schema
        self.generated = generated
        self.plan = plan
        self.variables = variables
        self.max_page_size = max_page_size
        self.uses_assets = False
        self.reads_drafts = False
        self.reads_back_references = False
        self._aliases = 0

    def selection(self, sql: str) -> Selection:
        """`sql`, a JSON expression this compiler built, with what reading it takes."""
        return Selection(sql, self.uses_assets, self.reads_drafts, self.reads_back_references)

    def alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    # Collecting fields, as graphql-core's executor does

    def collect(self, type_name: str, nodes: Sequence[FieldNode]) -> Fields:
        """The sub-fields of `nodes` for the runtime type `type_name`, by response key."""
        fields: Fields = {}
        seen: set[str] = set()
        for node in nodes:
            if node.selection_set is not None:
                self._collect(type_name, node.selection_set, fields, seen)
        return fields

    def collect_root(self, selection_set: SelectionSetNode) -> Fields:
        fields: Fields = {}
        self._collect("Query", selection_set, fields, set())
        return fields

    def _collect(
        self, type_name: str, selection_set: SelectionSetNode, fields: Fields, seen: set[str]
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self._applies(condition.name.value, type_name):
                    self._collect(type_name, selection.selection_set, fields, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen:
                    continue
                seen.add(name)
                fragment = self.plan.fragments[name]
                if self._applies(fragment.type_condition.name.value, type_name):
                    self._collect(type_name, fragment.selection_set, fields, seen)

    def _included(self, selection: Any) -> bool:
        if not selection.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, selection, self.variables)
        if skip and skip["if"]:
            return False
        include = get_directive_values(GraphQLIncludeDirective, selection, self.variables)
        return not (include and not include["if"])

    def _applies(self, condition: str, type_name: str) -> bool:
        if condition == type_name:
            return True
        abstract = self.schema.get_type(condition)
        runtime = self.schema.get_type(type_name)
        if abstract is None or not isinstance(runtime, GraphQLObjectType):
            return False
        return self.schema.is_sub_type(abstract, runtime)  # type: ignore[arg-type]

    # Objects

    def object(self, pairs: list[tuple[str, str]]) -> str:
        if len(pairs) > MAX_OBJECT_KEYS:
            raise NotCompilable("too many keys in one object")
        return "json_build_object(" + ", ".join(f"{literal(k)}, {v}" for k, v in pairs) + ")"

    def fields(
        self,
        cls: str,
        fields: Fields,
        fixed: dict[str, str],
        content: Callable[[Kind, str, list[FieldNode]], str],
        back_references: Callable[[list[FieldNode]], str] | None = None,
    ) -> str:
        """The object of class `cls`: `fixed` fields by SQL, content fields through `content`,
        a document's `referencedBy` through `back_references`."""
        kinds_of = self.generated.class_fields[cls]
        pairs: list[tuple[str, str]] = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                sql = literal(cls)
            elif name == BACK_REFERENCES and back_references is not None:
                sql = back_references(nodes)
            elif name in fixed:
                sql = fixed[name]
            elif name in kinds_of:
                sql = content(kinds_of[name], name, nodes)
            else:
                raise NotCompilable(f"{cls}.{name}")
            pairs.append((key, sql))
        return self.object(pairs)

    def document(self, type_name: str, fields: Fields, scope: Scope) -> str:
        """A readable document at `scope.alias`, as its generated type."""
        a = scope.alias
        published = scope.is_published
        fixed = {
            "id": f"{a}.id",
            "type": f"{a}.type",
            "status": f"CASE WHEN {published} THEN 'published' ELSE 'draft' END",
            "createdAt": iso(f"{a}.created_at"),
            "updatedAt": iso(f"{a}.updated_at"),
            "publishedAt": iso(f"{a}.published_at"),
            "revision": f"{a}.revision",
            "publishedHash": f"{a}.published_hash",
            "hasUnpublishedChanges": (
                f"(NOT {published} OR {a}.draft_hash IS DISTINCT FROM {a}.published_hash)"
            ),
            "_resolved": "true",
            "_raw": render(a, scope),
            "_id": f"{a}.id",
            "_ref": f"{a}.id",
        }
        return self.fields(
            graphql_name(type_name),
            fields,
            fixed,
            lambda kind, name, nodes: self.value(
                kind, f"{scope.data}->{literal(name)}", nodes, scope
            ),
            lambda nodes: self.back_references(nodes, scope),
        )

    def stub(self, type_name: str, fields: Fields, value: str) -> str:
        """A reference that is not followed: `_ref`, the first target's type, no content.

        Its `id` and `_id` are null, so that client caches never take it for the document.
        """
        fixed = dict.fromkeys(_DOCUMENT_FIELDS, "NULL")
        fixed.update(
            {
                "_ref": f"{value}->'_ref'",
                "type": literal(type_name),
                "status": "'unresolved'",
                "revision": "0",
                "hasUnpublishedChanges": "false",
                "_resolved": "false",
                "_raw": value,
            }
        )
        return self.fields(
            graphql_name(type_name), fields, fixed, lambda *_: "NULL", self.no_back_references
        )

    # Back-references

    def back_references(self, nodes: list[FieldNode], scope: Scope) -> str:
        """`referencedBy` of the document at `scope.alias`: as `RequestContext.referenced_by`
        and the local API's `back_references_of` answer it."""
        if not scope.stored:
            # The empty singleton's are an error (NOT_FOUND), which the resolvers answer.
            raise NotCompilable("the back-references of a singleton")
        self.reads_back_references = True
        perspective, limit, offset, depth = self._back_reference_arguments(nodes)
        try:
            perspective = check_perspective(
                perspective or ("published" if scope.published else "draft")
            )
            depth = check_depth(depth)
            limit, offset = check_page(limit, offset, max_limit=self.max_page_size)
        except CMSError:
            # An error where a document is met, which the resolvers answer; a stub's page takes
            # any arguments.
            return "cms_read_declined('an argument of referencedBy is out of range')"
        published = perspective == "published"
        self.reads_drafts |= not published
        plane = "published" if published else "draft"
        types = ", ".join(literal(t.name) for t in self.generated.registry.document_types())
        # `IN`: a document referencing the target from several fields is listed once.
        condition = (
            "d.id IN (SELECT r.referencer_id FROM cms_document_references r"
            f" WHERE r.ref_id = {scope.alias}.id AND r.plane = {literal(plane)})"
            f" AND d.type IN ({types}) AND {perspective_condition('d', published)}"
        )

        def docs(docs_nodes: list[FieldNode]) -> str:
            b = self.alias("b")
            # Each referencing document is a root: its references are followed to `depth`
            # from it, whatever the path that led to the target.
            inner = Scope(b, depth, (b,), published, page_row=True)
            branches = " ".join(
                f"WHEN {literal(t.name)} THEN "
                f"{self.document(t.name, self.collect(graphql_name(t.name), docs_nodes), inner)}"
                for t in self.generated.registry.document_types()
            )
            return (
                f"(SELECT coalesce(json_agg(CASE {b}.type {branches} END ORDER BY {b}.cms_n),"
                " '[]'::json) FROM (SELECT d.*, row_number() OVER () AS cms_n FROM"
                f" (SELECT {page_columns(published)} FROM cms_documents d WHERE {condition}"
                f" ORDER BY d.updated_at DESC, d.id LIMIT {int(limit)} OFFSET {int(offset)}) d)"
                f" {b})"
            )

        fields = self.collect("BackReferencePage", nodes)
        n = self.alias("n")
        pairs = self.page_fields("BackReferencePage", fields, docs, f"{n}.total", limit, offset)
        if not reads_total(fields):
            return self.object(pairs)
        return (
            f"(SELECT {self.object(pairs)} FROM"
            f" (SELECT count(*) AS total FROM cms_documents d WHERE {condition}) {n})"
        )

    def no_back_references(self, nodes: list[FieldNode]) -> str:
        """`referencedBy` of a stub: an empty page, its arguments as given (nothing is checked:
        a stub says nothing about its target)."""
        _, limit, offset, _ = self._back_reference_arguments(nodes)
        shown = {
            "docs": "'[]'::json",
            "totalDocs": "0",
            "limit": str(int(limit)),
            "offset": str(int(offset)),
            "page": "1",
            "totalPages": "0",
            "hasNextPage": "false",
            "hasPrevPage": "true" if offset > 0 else "false",
            "__typename": literal("BackReferencePage"),
        }
        fields = self.collect("BackReferencePage", nodes)
        return self.object([(key, shown[f[0].name.value]) for key, f in fields.items()])

    def _back_reference_arguments(self, nodes: list[FieldNode]) -> tuple[Any, Any, Any, Any]:
        """`referencedBy`'s perspective, limit, offset and depth, defaulted as the resolver
        defaults them."""
        definition: GraphQLField = self.schema.get_type("Document").fields[BACK_REFERENCES]  # type: ignore[union-attr]
        args = get_argument_values(definition, nodes[0], self.variables)
        limit = args.get("limit")
        return (
            args.get("perspective"),
            BACK_REFERENCES_LIMIT if limit is None else limit,
            args.get("offset") or 0,
            args.get("depth") or 0,
        )

    def page_fields(
        self,
        page_class: str,
        fields: Fields,
        docs: Callable[[list[FieldNode]], str],
        total: str,
        limit: int,
        offset: int,
    ) -> list[tuple[str, str]]:
        """The selected fields of a page of documents (`server.graphql.types.Page`): `docs`
        through `docs`, the others from the count `total` (SQL), `limit` and `offset`."""
        pairs: list[tuple[str, str]] = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "docs":
                sql = docs(nodes)
            elif name == "totalDocs":
                sql = total
            elif name == "limit":
                sql = str(limit)
            elif name == "offset":
                sql = str(offset)
            elif name == "page":
                sql = str(offset // limit + 1)
            elif name == "totalPages":
                sql = f"({total} + {limit - 1}) / {limit}"
            elif name == "hasNextPage":
                sql = f"({offset + limit} < {total})"
            elif name == "hasPrevPage":
                sql = "true" if offset > 0 else "false"
            elif name == "__typename":
                sql = literal(page_class)
            else:
                raise NotCompilable(f"{page_class}.{name}")
            pairs.append((key, sql))
        return pairs

    # Values

    def value(self, kind: Kind, v: str, nodes: Sequence[FieldNode], scope: Scope) -> str:
        """The JSON of the stored value `v` (a jsonb expression) shown as `kind`."""
        if isinstance(kind, kinds.Scalar):
            return scalar(kind.name, v)
        if isinstance(kind, kinds.Json):
            return self.json(v, scope, kind.references)
        if isinstance(kind, kinds.Asset):
            return self.asset_value(kind.name, v, nodes, scope)
        if isinstance(kind, kinds.Object):
            return self.object_value(
                kind.class_name, v, self.collect(kind.class_name, nodes), scope
            )
        if isinstance(kind, kinds.Reference):
            return self.reference(kind.targets, v, nodes, scope)
        if isinstance(kind, kinds.ListOf):
            json_type = (
                _SHOWN_AS_STORED.get(kind.item.name)
                if isinstance(kind.item, kinds.Scalar)
                else None
            )
            if json_type is not None:
                other = f"'strict $[*] ? (@.type() != \"{json_type}\")'"
                # Any other element: `cms_typed_elements` (migration 0028), the subquery below
                # as a function, so that the statement does not set it up at every execution.
                items = (
                    f"CASE WHEN NOT jsonb_path_exists({v}, {other}) THEN to_json({v})"
                    f" ELSE cms_typed_elements({v}, {literal(json_type)}) END"
                )
            else:
                e = self.alias("e")
                item = self.item(kind.item, f"{e}.value", nodes, scope)
                items = (
                    f"(SELECT coalesce(json_agg({item} ORDER BY {e}.n), '[]'::json)"
                    f" FROM jsonb_array_elements({v}) WITH ORDINALITY AS {e}(value, n))"
                )
            return f"CASE WHEN jsonb_typeof({v}) = 'array' THEN {items} END"
        raise NotCompilable(f"kind {kind!r}")

    def item(self, kind: Kind, v: str, nodes: Sequence[FieldNode], scope: Scope) -> str:
        if not isinstance(kind, kinds.ByItemType):
            return self.value(kind, v, nodes, scope)
        branches = []
        for item_type, member in kind.members:
            branches.append(f"WHEN {literal(item_type)} THEN {self.value(member, v, nodes, scope)}")
        return (
            f"CASE WHEN jsonb_typeof({v}) = 'object' THEN CASE {v}->>'_type'"
            f" {' '.join(branches)} END END"
        )

    def json(self, v: str, scope: Scope, references: str | None = None) -> str:
        """The stored JSON `v` with its references inlined; `references`: its reference node."""
        published = "true" if scope.published else "false"
        node = "NULL::jsonb" if references is None else f"{literal(references)}::jsonb"
        return (
            f"cms_inline({v}, {scope.remaining}, {scope.path_array()}, {published}, {PATHS},"
            f" {node})"
        )

    def object_value(self, cls: str, v: str, fields: Fields, scope: Scope) -> str:
        fixed = {name: scalar("text", f"{v}->{literal(name)}") for name in ("_key", "_type")}
        shown = self.fields(
            cls,
            fields,
            fixed,
            lambda kind, name, nodes: self.value(kind, f"{v}->{literal(name)}", nodes, scope),
        )
        return f"CASE WHEN jsonb_typeof({v}) = 'object' THEN {shown} END"

    def asset_value(self, name: str, v: str, nodes: Sequence[FieldNode], scope: Scope) -> str:
        cls = "Image" if name == "image" else "FileAsset"
        asset_ref = f"{v}->'asset'"
        asset_id = (
            f"CASE WHEN jsonb_typeof({v}->'asset'->'_ref') = 'string' THEN {v}->'asset'->'_ref' END"
        )
        pairs: list[tuple[str, str]] = []
        for key, field_nodes in self.collect(cls, nodes).items():
            field = field_nodes[0].name.value
            if field == "__typename":
                sql = literal(cls)
            elif field == "_type":
                sql = literal(name)
            elif field == "assetId":
                sql = asset_id
            elif field in ("alt", "caption"):
                sql = scalar("text", f"{v}->{literal(field)}")
            elif field in ("hotspot", "crop") and name == "image":
                sql = self.json(f"{v}->{literal(field)}", scope)
            elif field == "asset":
                self.uses_assets = True
                a = self.alias("a")
                asset = self.asset(a, self.collect("Asset", field_nodes))
                sql = f"(SELECT {asset} FROM {by_id(asset_ref, 'cms_assets', a)})"
            elif field in ("url", "width", "height") and not (field != "url" and name != "image"):
                self.uses_assets = True
                a = self.alias("a")
                sql = f"(SELECT {a}.{field} FROM {by_id(asset_ref, 'cms_assets', a)})"
            else:
                raise NotCompilable(f"{cls}.{field}")
            pairs.append((key, sql))
        return f"CASE WHEN jsonb_typeof({v}) = 'object' THEN {self.object(pairs)} END"

    def asset(self, a: str, fields: Fields) -> str:
        columns = {
            "id": f"{a}.id",
            "assetType": f"{a}.asset_type",
            "filename": f"{a}.filename",
            "originalFilename": f"{a}.original_filename",
            "mimeType": f"{a}.mime_type",
            "size": f"{a}.size",
            "url": f"{a}.url",
            "width": f"{a}.width",
            "height": f"{a}.height",
            "title": f"{a}.title",
            "description": f"{a}.description",
            "alt": f"{a}.alt",
            "creditLine": f"{a}.credit_line",
            "metadata": f"{a}.metadata",
            "referenceCount": "(SELECT count(DISTINCT r.document_id) FROM cms_asset_references r"
            f" WHERE r.asset_id = {a}.id)",
            "createdAt": iso(f"{a}.created_at"),
            "updatedAt": iso(f"{a}.updated_at"),
            "__typename": "'Asset'",
        }
        pairs = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name not in columns:
                raise NotCompilable(f"Asset.{name}")
            pairs.append((key, columns[name]))
        return self.object(pairs)

    # References

    def reference(
        self, targets: tuple[str, ...], v: str, nodes: Sequence[FieldNode], scope: Scope
    ) -> str:
        """A reference: the target inlined when it can be, else the stub; null when no reference."""
        first = targets[0]
        stub = self.stub(first, self.collect(graphql_name(first), nodes), v)
        if scope.remaining <= 0:
            shown = stub
        else:
            t = self.alias("t")
            inner = Scope(t, scope.remaining - 1, (*scope.path, t), scope.published)
            # A target of another type gives NULL here, so the stub. The type is checked in the
            # SELECT list, not the WHERE: there it would draw the planner to the indexes that lead
            # with `type`, scanning a type's documents instead of looking the id up.
            branches = " ".join(
                f"WHEN {literal(target)} THEN "
                f"{self.document(target, self.collect(graphql_name(target), nodes), inner)}"
                for target in targets
            )
            resolved = f"CASE {t}.type {branches} END"
            condition = " AND ".join(
                [
                    # No `_type`, or `reference`.
                    f"coalesce({v}->'_type', '\"reference\"'::jsonb) = '\"reference\"'::jsonb",
                    f"{t}.id NOT IN ({', '.join(f'{a}.id' for a in scope.path)})",
                    perspective_condition(t, scope.published),
                ]
            )
            found = f"SELECT {resolved} FROM {by_id(v, 'cms_documents', t)} WHERE {condition}"
            shown = f"coalesce(({found}), {stub})"
        # `->` gives NULL on anything but an object, so the `_ref` test is also the object test,
        # and the `_type` test above is written with as few calls: every function call of the
        # statement is set up again at each execution, and under the request role checked for
        # its privilege (Q5's statement: 10 µs of 415 less, `python -m bench.statement_cpu`).
        return f"CASE WHEN jsonb_typeof({v}->'_ref') = 'string' THEN {shown} END"


def well_formed_id(text: str) -> str:
    """Whether `text` is an id as the API writes it (what `server.content.validation.UUID_PATTERN`
    matches: 36 characters, lowercase hex digits in groups of 8-4-4-4-12), without a regular
    expression of that shape: matching one costs PostgreSQL about 3 µs a value (its regex engine
    builds the automaton's states again on every match), a page of references hundreds of µs.

    The same strings: `LIKE` fixes the length and a `-` at the four places, the class lets only
    lowercase hex digits and `-` through, and 32 characters other than `-` leave no `-` elsewhere.
    """
    return (
        f"{text} LIKE '________-____-____-____-____________'"
        f" AND {text} !~ '[^-0-9a-f]' AND length(replace({text}, '-', '')) = 32"
    )


def by_id(reference: str, table: str, alias: str) -> str:
    """`table` AS `alias`, joined to the row whose id the stored reference `reference` names.

    The id is read from the JSON in a subquery of its own (`OFFSET 0` keeps it one): under
    Row-Level Security, PostgreSQL before 18 does not use an index for a condition that applies
    functions which are not leakproof (`->>`, `~`, the cast) to the outer row, and would scan the
    table for each reference. Joined on a plain column, the primary key is used. A malformed id
    gives NULL, so no row: never an error.
    """
    ref = f"{reference}->>'_ref'"
    wanted = f"(SELECT CASE WHEN {well_formed_id(ref)} THEN ({ref})::uuid END AS id OFFSET 0)"
    return f"{wanted} AS {alias}_ref JOIN {table} {alias} ON {alias}.id = {alias}_ref.id"


def _moment(function: str, as_is: str, v: str) -> str:
    """A stored date or datetime as `function` reads it: as it is when it matches `as_is`."""
    text = f"({v} #>> '{{}}')"
    return (
        f"CASE WHEN jsonb_typeof({v}) = 'string' THEN"
        f" CASE WHEN {text} ~ {as_is} THEN {text} ELSE {function}({text}) END END"
    )


# Scalars whose value a list shows as stored when it has this JSON type: a list of them all of it
# (tags, the usual case) is shown as it is, after one JSON path test, in place of a subquery that
# takes it apart and builds it again, about 3 µs of PostgreSQL's CPU a list. The same text: a
# jsonb array is written with the separators `json_agg` writes, and its strings escaped alike.
_SHOWN_AS_STORED = {"text": "string", "boolean": "boolean"}

# A JSON number that is a 32-bit integer (3.0 included), itself; nothing for anything else.
_INT_32 = (
    "'strict $ ? (@.type() == \"number\" && @ == @.floor() && @ >= -2147483648 && @ <= 2147483647)'"
)


def scalar(name: str, v: str) -> str:
    """A stored scalar shown as the GraphQL scalar of its field, or null when it is not one."""
    if name == "text":
        return f"CASE WHEN jsonb_typeof({v}) = 'string' THEN {v} END"
    if name == "boolean":
        return f"CASE WHEN jsonb_typeof({v}) = 'boolean' THEN {v} END"
    if name == "date":
        return _moment("cms_read_date", AS_IS_DATE, v)
    if name == "datetime":
        return _moment("cms_read_datetime", AS_IS_DATETIME, v)
    if name == "int":
        # GraphQL's Int is 32-bit; an integral float (3.0) shows as 3. One JSON path test rather
        # than a CASE over `v`: the CASE read `v` five times and set up a dozen function calls
        # at every execution, 3 µs of PostgreSQL's CPU per Int field in a read of one post
        # (`python -m bench.statement_cpu`). Strict mode: lax would look inside an array.
        return f"(jsonb_path_query_first({v}, {_INT_32}))::integer"
    if name == "float":
        return f"CASE WHEN jsonb_typeof({v}) = 'number' THEN (({v})::numeric)::float8 END"
    raise NotCompilable(f"scalar {name}")
