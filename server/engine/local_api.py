"""The local API: the content engine as Python calls, on which the GraphQL layer is built.

    async with local_api.context(org_id, user_id="u1", capabilities=caps) as ctx:
        page = await local_api.collections.post.find(ctx, where={"views": {"greater_than": 10}})
        draft = await local_api.collections.post.create(ctx, {"title": "Hello"})

Every call takes a `Context`: the org-scoped transaction (so Row-Level Security applies to every
statement), the registry the unit of work started with, the caller and what the caller may do.
`system_context(org_id)` is for jobs and seeds: every capability, and RLS passes.

Documents come back as JSON: `{"id", ...data in the perspective, "_meta": {...}}`, with references
inlined to the requested depth (see `server/content/references.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from server.access.auth import Principal
from server.content.back_references import PLANES, find_back_references, planes_of
from server.content.content_model import ContentModel
from server.content.documents import DocumentRow, References, Version, check_revision
from server.content.hash import content_hash
from server.content.publishable import SavedDraft, publishable_drafts
from server.content.queries import count_documents, find_document_by_id, find_documents
from server.content.references import resolve_references
from server.content.singletons import empty_row, singleton_id
from server.content.validation import document_links, document_problems, validate_document
from server.content.written import written_documents
from server.db.pool import NotWritten
from server.engine.access import AccessAPI
from server.engine.adapter import Access, Assets, Documents, Schedules, Transactions
from server.engine.context import Context, document_type, parse_id
from server.engine.schedules import SchedulesAPI
from server.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SingletonExistsError,
)
from server.model.pages import Page
from server.model.reading import (
    DEFAULT_LIMIT,
    Perspective,
    check_depth,
    check_page,
)
from server.model.reference_paths import reference_paths
from server.model.types import Registry, SchemaType

if TYPE_CHECKING:
    from server.content.schedules import ScheduleRow

# With the row type its calls return, for its callers.
__all__ = [
    "DEFAULT_BACK_REFERENCES",
    "Collection",
    "Collections",
    "DocumentRow",
    "LocalAPI",
    "render",
    "rendered",
]

DEFAULT_BACK_REFERENCES = 20


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def render(row: DocumentRow, data: Mapping[str, Any]) -> dict[str, Any]:
    """A document as the local API returns it."""
    return {
        "id": str(row.id),
        **data,
        "_meta": {
            "type": row.type,
            "status": "published" if row.is_published else "draft",
            "organizationId": str(row.organization_id),
            "createdAt": _iso(row.created_at),
            "updatedAt": _iso(row.updated_at),
            "publishedAt": _iso(row.published_at),
            "publishedHash": row.published_hash,
            "revision": row.revision,
            "createdBy": row.created_by,
            "updatedBy": row.updated_by,
            "hasUnpublishedChanges": row.has_unpublished_changes,
        },
    }


async def rendered(
    ctx: Context, rows: Sequence[DocumentRow], *, depth: int, perspective: Perspective
) -> list[dict[str, Any]]:
    """`rows` as the local API returns documents: rendered, their references inlined to `depth` in
    `perspective` (a target of a type its field does not take stays a reference)."""
    return await resolve_references(
        ctx.tx,
        list(rows),
        depth=depth,
        perspective=perspective,
        render=render,
        paths=reference_paths(ctx.registry),
    )


def _declared(schema_type: SchemaType, data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` without the keys the type does not declare (after a schema change, or stored before
    system keys were refused at the top level)."""
    declared = {field.name for field in schema_type.fields}
    return {key: value for key, value in data.items() if key in declared}


def _merged(
    schema_type: SchemaType, draft: Mapping[str, Any] | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    """An update's draft: `data`'s top-level keys over the declared part of `draft` (`None`
    removes a key)."""
    merged = _declared(schema_type, draft or {})
    for key, value in data.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _same_json(data: Mapping[str, Any], stored: Mapping[str, Any] | None) -> bool:
    # Exactly the same JSON (keys in any order), so 1 and 1.0 differ as they do in jsonb.
    return stored is not None and orjson.dumps(data, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        stored, option=orjson.OPT_SORT_KEYS
    )


class EngineAdapter(Transactions, Documents, Assets, Schedules, Access, Protocol):
    """What the local API holds: its own documents and transactions, and what the services built
    on it reach through it (access, schedules, assets, the scheduler, the request opener)."""


class LocalAPI:
    def __init__(
        self,
        adapter: EngineAdapter,
        model: ContentModel,
        *,
        max_page_size: int = 200,
    ) -> None:
        self.adapter = adapter
        self.model = model
        self.max_page_size = max_page_size
        self.collections = Collections(self)
        self.schedules = SchedulesAPI(adapter, max_page_size=max_page_size)
        self.access = AccessAPI(adapter)

    @asynccontextmanager
    async def context(
        self,
        organization_id: str | uuid.UUID,
        *,
        user_id: str | None = None,
        capabilities: frozenset[str] | None = frozenset(),
        published_only: bool = False,
        session_id: str | None = None,
        read_only: bool = False,
    ) -> AsyncIterator[Context]:
        """An org-scoped unit of work for a caller with `capabilities` (none by default); a
        signed-in user's carries their `session_id`."""
        async with self.adapter.with_org_context(organization_id, read_only=read_only) as tx:
            yield Context(
                tx=tx,
                organization_id=parse_id(organization_id, "organizationId"),
                registry=self.model.registry,
                user_id=user_id,
                capabilities=capabilities,
                published_only=published_only,
                session_id=session_id,
            )

    @asynccontextmanager
    async def system_context(self, organization_id: str | uuid.UUID) -> AsyncIterator[Context]:
        """For jobs and seeds: every capability, and Row-Level Security passes. Never for requests."""
        async with self.adapter.system_context(organization_id) as tx:
            yield Context(
                tx=tx,
                organization_id=parse_id(organization_id, "organizationId"),
                registry=self.model.registry,
                user_id="system",
                capabilities=None,
            )

    def collection(self, name: str, registry: Registry | None = None) -> Collection:
        document_type(registry or self.model.registry, name)
        return Collection(self, name)

    async def get_back_references(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        *,
        perspective: str = "published",
        limit: int = DEFAULT_BACK_REFERENCES,
        offset: int = 0,
        depth: int = 0,
        every_plane: bool = False,
    ) -> Page[dict[str, Any]]:
        """The documents that reference document `id`, from the reference index: those the caller
        may read, in `perspective` (their published data references it, or their draft does),
        most recently updated first, one page, references inlined to `depth`.

        `every_plane` counts a reference from either plane (what deleting the document breaks);
        the documents are then shown in the draft perspective. A document the caller cannot read
        answers NOT_FOUND, as if it did not exist.
        """
        [found] = await self.back_references_of(
            ctx,
            [id],
            perspective=perspective,
            limit=limit,
            offset=offset,
            depth=depth,
            every_plane=every_plane,
        )
        if found is None:
            raise NotFoundError(f"document {id} not found")
        return found

    async def back_references_of(
        self,
        ctx: Context,
        ids: Sequence[str | uuid.UUID],
        *,
        perspective: str = "published",
        limit: int = DEFAULT_BACK_REFERENCES,
        offset: int = 0,
        depth: int = 0,
        every_plane: bool = False,
    ) -> list[Page[dict[str, Any]] | None]:
        """`get_back_references` of each of `ids` in a fixed number of statements, however many
        they are (None for a document the caller cannot read)."""
        ctx.require("document.read")
        chosen = ctx.perspective("draft" if every_plane else perspective)
        depth = check_depth(depth)
        limit, offset = check_page(limit, offset, max_limit=self.max_page_size)
        targets = [parse_id(id) for id in ids]
        found = await find_back_references(
            ctx.tx,
            targets,
            types=[t.name for t in ctx.registry.document_types()],
            perspective=chosen,
            planes=PLANES if every_plane else planes_of(chosen),
            limit=limit,
            offset=offset,
        )
        # Every page's documents rendered together: their references to `depth` in one read per
        # level for all of them.
        docs = await rendered(
            ctx,
            [row for page in found.values() for row in page.items],
            depth=depth,
            perspective=chosen,
        )
        rendered_pages: dict[uuid.UUID, Page[dict[str, Any]]] = {}
        start = 0
        for target, page in found.items():
            rendered_pages[target] = page.with_items(docs[start : start + len(page.items)])
            start += len(page.items)
        return [rendered_pages.get(target) for target in targets]


class Collections:
    """`local_api.collections.post`: attribute access to the document types."""

    def __init__(self, api: LocalAPI) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Collection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._api.collection(name)

    def __getitem__(self, name: str) -> Collection:
        return self._api.collection(name)


class Collection:
    """The operations on the documents of one type."""

    def __init__(self, api: LocalAPI, type_name: str) -> None:
        self.api = api
        self.type_name = type_name

    def _type(self, ctx: Context) -> SchemaType:
        schema_type = ctx.registry.get(self.type_name)
        if schema_type is None or not schema_type.is_document:
            raise InvalidInputError(f"unknown document type '{self.type_name}'", path="type")
        return schema_type

    def _singleton(self, ctx: Context) -> SchemaType:
        schema_type = self._type(ctx)
        if not schema_type.singleton:
            raise InvalidInputError(f"'{self.type_name}' is not a singleton type", path="type")
        return schema_type

    def singleton_id(self, ctx: Context) -> uuid.UUID:
        """The id of this singleton type's document in the context's organization."""
        self._singleton(ctx)
        return singleton_id(ctx.organization_id, self.type_name)

    def _is_singleton_id(self, ctx: Context, schema_type: SchemaType, id: object) -> bool:
        return schema_type.singleton and parse_id(id) == singleton_id(
            ctx.organization_id, self.type_name
        )

    # Reading

    async def get(
        self, ctx: Context, *, depth: int = 0, perspective: str = "published"
    ) -> dict[str, Any]:
        """The singleton in the perspective; never saved (or, in the published perspective, never
        published), its empty document: the id it is saved under, no content, revision 0. Reading
        never creates it."""
        ctx.require("document.read")
        self._singleton(ctx)
        chosen = ctx.perspective(perspective)
        depth = check_depth(depth)
        row = await find_document_by_id(
            ctx.tx,
            self.type_name,
            singleton_id(ctx.organization_id, self.type_name),
            perspective=chosen,
        )
        if row is None:
            row = empty_row(ctx.organization_id, self.type_name)
        [doc] = await rendered(ctx, [row], depth=depth, perspective=chosen)
        return doc

    async def find(
        self,
        ctx: Context,
        *,
        where: Mapping[str, Any] | None = None,
        sort: str | Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
        depth: int = 0,
        perspective: str = "published",
        with_total: bool = True,
    ) -> Page[dict[str, Any]]:
        """Documents matching `where`, sorted, one page, references inlined to `depth`."""
        ctx.require("document.read")
        self._type(ctx)
        chosen = ctx.perspective(perspective)
        depth = check_depth(depth)
        limit, offset = check_page(limit, offset, max_limit=self.api.max_page_size)
        if where is not None and not isinstance(where, Mapping):
            raise InvalidInputError("where must be an object", path="where")
        page = await find_documents(
            ctx.tx,
            ctx.registry,
            self.type_name,
            where=where,
            sort=sort,
            limit=limit,
            offset=offset,
            perspective=chosen,
            with_total=with_total,
        )
        docs = await rendered(ctx, page.items, depth=depth, perspective=chosen)
        return page.with_items(docs)

    async def find_by_id(
        self, ctx: Context, id: str | uuid.UUID, *, depth: int = 0, perspective: str = "published"
    ) -> dict[str, Any] | None:
        """The document in the perspective, or None when absent, of another type, or not readable."""
        ctx.require("document.read")
        chosen = ctx.perspective(perspective)
        depth = check_depth(depth)
        row = await find_document_by_id(ctx.tx, self.type_name, parse_id(id), perspective=chosen)
        if row is None:
            return None
        [doc] = await rendered(ctx, [row], depth=depth, perspective=chosen)
        return doc

    async def count(
        self,
        ctx: Context,
        *,
        where: Mapping[str, Any] | None = None,
        perspective: str = "published",
    ) -> int:
        ctx.require("document.read")
        return await count_documents(
            ctx.tx,
            ctx.registry,
            self.type_name,
            where=where,
            perspective=ctx.perspective(perspective),
        )

    # Writing

    def _prepare(
        self, registry: Registry, data: Any, *, publish: bool, publishing_next: bool = False
    ) -> tuple[dict[str, Any], str, References, bool]:
        """The data as saved, its hash and its references, once it passed validation, and whether
        a draft was found publishable.

        `publishing_next`: a publish is likely to follow (the document is published), so a draft
        is checked with the content rules at once, and when it passes them the publish need not
        walk it again (`server/content/publishable.py`).
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError("data must be an object", path="data")
        document = dict(data)
        if publish or not publishing_next:
            validate_document(registry, self.type_name, document, publish=publish)
            return document, content_hash(document), self._references(registry, document), False
        if document_problems(registry, self.type_name, document, publish=True):
            # Not publishable: the draft's own checks decide, and answer as they always do.
            validate_document(registry, self.type_name, document, publish=False)
            return document, content_hash(document), self._references(registry, document), False
        references = self._references(registry, document)
        publishable_drafts(registry).remember(self.type_name, document, references)
        return document, content_hash(document), references, True

    def _references(self, registry: Registry, data: Mapping[str, Any]) -> References:
        found_targets, found_assets = document_links(registry, self.type_name, data)
        targets = tuple((path, uuid.UUID(ref), to) for path, ref, to in found_targets)
        assets = tuple((path, uuid.UUID(ref)) for path, ref in found_assets)
        documents = tuple(dict.fromkeys(ref for _, ref, _ in targets))
        return References(documents=documents, assets=assets, targets=targets)

    async def create(
        self,
        ctx: Context,
        data: Mapping[str, Any],
        *,
        publish: bool = False,
        id: str | uuid.UUID | None = None,
        depth: int = 0,
    ) -> dict[str, Any]:
        """A new draft (and, with `publish`, published at once in the same transaction).

        Like every write, it returns the document with its references inlined to `depth`: the draft
        perspective, or the published one after publishing.
        """
        ctx.require("document.create")
        if publish:
            ctx.require("document.publish")
        schema_type = self._type(ctx)
        chosen = parse_id(id) if id is not None else None
        if schema_type.singleton:
            chosen = singleton_id(ctx.organization_id, self.type_name)
            if id is not None and parse_id(id) != chosen:
                raise InvalidInputError(
                    f"a {self.type_name} document's id is derived from its organization: {chosen}",
                    path="id",
                )
            if await self.api.adapter.find_document(ctx.tx, id=chosen) is not None:
                raise _singleton_exists(self.type_name)
        row = await self._insert(ctx, data, publish=publish, id=chosen)
        return await self._render(ctx, row, "published" if publish else "draft", depth)

    async def _insert(
        self,
        ctx: Context,
        data: Mapping[str, Any],
        *,
        publish: bool,
        id: uuid.UUID | None,
    ) -> DocumentRow:
        """A new document, published at once with `publish`: the row as written."""
        document, draft_hash, references, _ = self._prepare(ctx.registry, data, publish=publish)
        try:
            row = await self.api.adapter.create_document(
                ctx.tx,
                type=self.type_name,
                data=document,
                draft_hash=draft_hash,
                references=references,
                created_by=ctx.user_id,
                id=id,
            )
        except ConflictError as exc:
            # Two first saves of a singleton at once: the later one finds the id taken.
            if self._type(ctx).singleton:
                raise _singleton_exists(self.type_name) from exc
            raise
        if publish:
            return await self._publish_row(ctx, row, None)
        return row

    async def update(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        data: Mapping[str, Any],
        *,
        publish: bool = False,
        expected_revision: int | None = None,
        depth: int = 0,
    ) -> dict[str, Any]:
        """Merge `data`'s top-level keys into the draft (`None` removes a key): the autosave path.

        Keys the type no longer declares are dropped from the draft, so a schema change never leaves
        a draft that cannot be saved. A stale `expected_revision` raises ConflictError.
        """
        row = await self._update_row(
            ctx, id, data, publish=publish, expected_revision=expected_revision, with_data=True
        )
        return await self._render(ctx, row, "published" if publish else "draft", depth)

    async def update_row(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        data: Mapping[str, Any],
        *,
        publish: bool = False,
        expected_revision: int | None = None,
    ) -> DocumentRow:
        """`update` without rendering the document: the row as written, without its data
        (`DocumentRow` says what such a row holds)."""
        return await self._update_row(
            ctx, id, data, publish=publish, expected_revision=expected_revision, with_data=False
        )

    async def _update_row(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        data: Mapping[str, Any],
        *,
        publish: bool,
        expected_revision: int | None,
        with_data: bool,
    ) -> DocumentRow:
        ctx.require("document.update")
        if publish:
            ctx.require("document.publish")
        schema_type = self._type(ctx)
        if not isinstance(data, Mapping):
            raise InvalidInputError("data must be an object", path="data")
        current = await self._locked_or_unsaved(
            ctx, schema_type, id, expected_revision, published_data=with_data
        )
        if current is None:  # the singleton's first save creates it
            document = {key: value for key, value in data.items() if value is not None}
            return await self._insert(ctx, document, publish=publish, id=parse_id(id))
        merged = _merged(schema_type, current.draft_data, data)
        # Publishing after the save reads the draft the save wrote.
        row = await self._save(
            ctx,
            current,
            merged,
            publish=publish,
            expected_revision=expected_revision,
            with_data=with_data or publish,
        )
        if publish:
            return await self._publish_row(ctx, row, None, with_data=with_data)
        return row

    async def _save(
        self,
        ctx: Context,
        current: DocumentRow,
        data: dict[str, Any],
        *,
        publish: bool = False,
        expected_revision: int | None = None,
        restored_from: int | None = None,
        with_data: bool = True,
    ) -> DocumentRow:
        """Write `data` as the draft of the locked `current`, unless it is the draft already: a save
        that changes nothing makes no revision and no version."""
        document, draft_hash, references, publishable = self._prepare(
            ctx.registry, data, publish=publish, publishing_next=current.is_published
        )
        if _same_json(document, current.draft_data):
            check_revision(current, expected_revision)
            return current
        row = await self.api.adapter.update_draft(
            ctx.tx,
            document=current,
            data=document,
            draft_hash=draft_hash,
            references=references,
            updated_by=ctx.user_id,
            expected_revision=expected_revision,
            restored_from=restored_from,
            with_data=with_data,
        )
        if publishable:
            self._remember_saved(ctx.registry, current, row, draft_hash, references)
        return row

    def _remember_saved(
        self,
        registry: Registry,
        current: DocumentRow,
        row: DocumentRow,
        draft_hash: str,
        references: References,
    ) -> None:
        """Note the publishable draft a save of `current` wrote (`row`), for the publish that is
        likely to follow (`publish_row`)."""
        publishable_drafts(registry).remember_saved(
            self.type_name,
            row.id,
            SavedDraft(
                row.revision,
                draft_hash,
                references,
                current.published_hash,
                current.index.published if current.index is not None else None,
            ),
        )

    async def publish(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        *,
        expected_revision: int | None = None,
        depth: int = 0,
    ) -> dict[str, Any]:
        """Publish the current draft; refused while it breaks a content rule."""
        row = await self._publish_by_id(ctx, id, expected_revision, with_data=True)
        return await self._render(ctx, row, "published", depth)

    async def publish_row(
        self, ctx: Context, id: str | uuid.UUID, *, expected_revision: int | None = None
    ) -> DocumentRow:
        """`publish` without rendering the document: the row as written, without its data
        (`DocumentRow` says what such a row holds).

        A draft this process just saved and found publishable is published in one statement,
        without locking and reading the document first (`DocumentStore.publish_saved_draft`).

        Raises:
            DraftMovedError: the document changed since that save. Nothing was written, but the
                unit of work is failed: the caller rolls it back (and may run `publish` anew).
        """
        ctx.require("document.publish")
        document_id = parse_id(id)
        saved = publishable_drafts(ctx.registry).saved(self.type_name, document_id)
        if saved is not None and expected_revision in (None, saved.revision):
            written_documents(ctx.registry).forget(ctx.organization_id, self.type_name, document_id)
            return await self.api.adapter.publish_saved_draft(
                ctx.tx, **self._saved_publish(document_id, saved, ctx.organization_id, ctx.user_id)
            )
        return await self._publish_by_id(ctx, id, expected_revision, with_data=False)

    async def update_at_once(
        self,
        principal: Principal,
        registry: Registry,
        opening: Sequence[Any],
        id: str | uuid.UUID,
        data: Mapping[str, Any],
        *,
        expected_revision: int | None = None,
        cancel_after: float | None = None,
    ) -> DocumentRow | None:
        """`update_row` (without `publish`) for a caller whose facts this process knows
        (`opening`), without a transaction: one statement reads the document without locking it,
        and one writes it only while it is still the version read, each opening the request and
        committing (`read_for_save_at_once`, `save_draft_at_once`). The row comes back without
        its data.

        None when it does not apply or wrote nothing (a missing capability, no such document of
        this type in the caller's organization, a stale `expected_revision`, data the rules
        refuse, a document changed since it was read, facts that changed, ...): the save then
        runs in a unit of work as always, which answers any error it has.

        Raises:
            UnavailableError, TimedOutError: the write may have been committed; it must not run
                again.
        """
        if principal.published_only or not principal.can("document.update"):
            return None
        schema_type = registry.get(self.type_name)
        if schema_type is None or not schema_type.is_document or not isinstance(data, Mapping):
            return None
        adapter = self.api.adapter
        written = written_documents(registry)
        try:
            document_id = parse_id(id)
        except InvalidInputError:
            return None
        # The document as this process last wrote it, else as read now (`server/content/written.py`).
        current = written.take(
            principal.organization_id, self.type_name, document_id, expected_revision
        )
        while True:
            remembered = current is not None
            try:
                if current is None:
                    current = await adapter.read_for_save_at_once(
                        adapter.database, opening, cancel_after=cancel_after, id=document_id
                    )
                    if current is None or current.type != self.type_name:
                        return None
                check_revision(current, expected_revision)
                merged = _merged(schema_type, current.draft_data, data)
                document, draft_hash, references, publishable = self._prepare(
                    registry, merged, publish=False, publishing_next=current.is_published
                )
                if _same_json(document, current.draft_data):
                    if remembered:  # whether the draft is still that one, only a read tells
                        current = None
                        continue
                    return current  # nothing to write: no revision, no version
                row = await adapter.save_draft_at_once(
                    adapter.database,
                    opening,
                    cancel_after=cancel_after,
                    document=current,
                    data=document,
                    draft_hash=draft_hash,
                    references=references,
                    updated_by=principal.user_id,
                )
            except (NotWritten, InvalidInputError, ConflictError):
                if remembered:  # written since by someone else, perhaps: read it
                    current = None
                    continue
                return None
            break
        if publishable:
            self._remember_saved(registry, current, row, draft_hash, references)
        written.remember(row, document)
        return row

    async def publish_saved_at_once(
        self,
        principal: Principal,
        registry: Registry,
        opening: Sequence[Any],
        id: str | uuid.UUID,
        *,
        expected_revision: int | None = None,
        cancel_after: float | None = None,
    ) -> DocumentRow | None:
        """`publish_row` of a draft this process just saved, for a caller whose facts it knows
        (`opening`, `server.access.opening.known_run_arguments`), without a transaction: one
        statement opens the request, publishes and commits (`publish_saved_draft_at_once`).

        None when it does not apply or wrote nothing (no such saved draft, a missing capability,
        the document changed, the caller's facts changed, a refused write): the publish then runs
        in a unit of work as always, which answers any error it has.

        Raises:
            UnavailableError, TimedOutError: the statement may have been committed; it must
                not run again.
        """
        if principal.published_only or not principal.can("document.publish"):
            return None
        document_id = parse_id(id)
        saved = publishable_drafts(registry).saved(self.type_name, document_id)
        if saved is None or expected_revision not in (None, saved.revision):
            return None
        written = written_documents(registry)
        kept = written.peek(principal.organization_id, self.type_name, document_id)
        try:
            row = await self.api.adapter.publish_saved_draft_at_once(
                self.api.adapter.database,
                opening,
                cancel_after=cancel_after,
                index=kept.index if kept is not None else None,
                **self._saved_publish(
                    document_id, saved, principal.organization_id, principal.user_id
                ),
            )
        except NotWritten:
            return None
        written.published(row)
        return row

    def _saved_publish(
        self,
        document_id: uuid.UUID,
        saved: SavedDraft,
        organization_id: uuid.UUID,
        published_by: str | None,
    ) -> dict[str, Any]:
        """The arguments of the publish of the draft `saved` (`publish_saved_draft` and
        `publish_saved_draft_at_once`)."""
        return {
            "id": document_id,
            "organization_id": organization_id,
            "type": self.type_name,
            "revision": saved.revision,
            "draft_hash": saved.draft_hash,
            "references": saved.references,
            "published_hash": saved.published_hash,
            "published_index": saved.published_index,
            "published_by": published_by,
        }

    async def _publish_by_id(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        expected_revision: int | None,
        *,
        with_data: bool,
    ) -> DocumentRow:
        ctx.require("document.publish")
        schema_type = self._type(ctx)
        current = await self._locked_or_unsaved(
            ctx, schema_type, id, expected_revision, published_data=with_data
        )
        if current is None:  # a singleton never saved publishes its empty draft, if its rules allow
            return await self._insert(ctx, {}, publish=True, id=parse_id(id))
        return await self._publish_row(ctx, current, expected_revision, with_data=with_data)

    async def _render(
        self, ctx: Context, row: DocumentRow, perspective: Perspective, depth: int
    ) -> dict[str, Any]:
        [doc] = await rendered(ctx, [row], depth=check_depth(depth), perspective=perspective)
        return doc

    async def _publish_row(
        self,
        ctx: Context,
        row: DocumentRow,
        expected_revision: int | None,
        *,
        with_data: bool = True,
    ) -> DocumentRow:
        draft = row.draft_data or {}
        # A draft a save just found publishable (`_prepare`) is not walked again.
        references = publishable_drafts(ctx.registry).references(self.type_name, draft)
        if references is None:
            validate_document(ctx.registry, self.type_name, draft, publish=True)
            references = self._references(ctx.registry, draft)
        return await self.api.adapter.publish_document(
            ctx.tx,
            document=row,
            published_hash=row.draft_hash or content_hash(draft),
            references=references,
            published_by=ctx.user_id,
            expected_revision=expected_revision,
            with_data=with_data,
        )

    async def unpublish(
        self, ctx: Context, id: str | uuid.UUID, *, depth: int = 0
    ) -> dict[str, Any]:
        return await self._render(ctx, await self.unpublish_row(ctx, id), "draft", depth)

    async def unpublish_row(self, ctx: Context, id: str | uuid.UUID) -> DocumentRow:
        """`unpublish` without rendering the document: the row as written."""
        ctx.require("document.unpublish")
        current = await self._locked(ctx, id)
        return await self.api.adapter.unpublish_document(
            ctx.tx, id=current.id, updated_by=ctx.user_id
        )

    async def delete(self, ctx: Context, id: str | uuid.UUID) -> None:
        """Delete the document and its version history."""
        ctx.require("document.delete")
        current = await self._locked(ctx, id)
        await self.api.adapter.delete_document(ctx.tx, id=current.id)

    # Schedules (`server/engine/schedules.py`)

    async def schedule_publish(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        at: datetime,
        *,
        expected_revision: int | None = None,
    ) -> ScheduleRow:
        """Publish the draft revision current now, at `at`; it fails if the draft changes."""
        return await self.api.schedules.publish(
            ctx, id, at, expected_revision=expected_revision, type_name=self.type_name
        )

    async def schedule_unpublish(
        self, ctx: Context, id: str | uuid.UUID, at: datetime
    ) -> ScheduleRow:
        return await self.api.schedules.unpublish(ctx, id, at, type_name=self.type_name)

    async def get_scheduled(
        self,
        ctx: Context,
        id: str | uuid.UUID | None = None,
        *,
        status: str | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[ScheduleRow]:
        """This type's schedules (of one document with `id`), soonest first."""
        return await self.api.schedules.find(
            ctx, document_id=id, type_name=self.type_name, status=status, limit=limit, offset=offset
        )

    async def cancel_scheduled(self, ctx: Context, schedule_id: str | uuid.UUID) -> ScheduleRow:
        return await self.api.schedules.cancel(ctx, schedule_id, type_name=self.type_name)

    # Versions

    async def versions(
        self, ctx: Context, id: str | uuid.UUID, *, limit: int = 20, offset: int = 0
    ) -> Page[Version]:
        """The version history, newest first."""
        ctx.require("document.read")
        ctx.perspective("draft")  # version history is draft data
        limit, offset = check_page(limit, offset, max_limit=self.api.max_page_size)
        document = await self._readable(ctx, id)
        versions, total = await self.api.adapter.list_versions(
            ctx.tx, document_id=document.id, limit=limit, offset=offset
        )
        return Page.counted(versions, total=total, limit=limit, offset=offset)

    async def version(self, ctx: Context, id: str | uuid.UUID, version_number: int) -> Version:
        ctx.require("document.read")
        ctx.perspective("draft")  # version history is draft data
        document = await self._readable(ctx, id)
        version = await self.api.adapter.get_version(
            ctx.tx, document_id=document.id, version_number=version_number
        )
        if version is None:
            raise NotFoundError(f"document {id} has no version {version_number}")
        return version

    async def restore_version(
        self, ctx: Context, id: str | uuid.UUID, version_number: int, *, depth: int = 0
    ) -> dict[str, Any]:
        """Make an old version the draft again: a `restore` version naming `version_number` (none
        when the draft is that data already); the published data is untouched. Keys the type no
        longer declares are left out, as a draft save leaves them out."""
        ctx.require("document.update")
        schema_type = self._type(ctx)
        version = await self.version(ctx, id, version_number)
        current = await self._locked(ctx, id)
        data = _declared(schema_type, version.data)
        row = await self._save(ctx, current, data, restored_from=version.version_number)
        return await self._render(ctx, row, "draft", depth)

    # Helpers

    async def _locked(
        self, ctx: Context, id: str | uuid.UUID, *, published_data: bool = True
    ) -> DocumentRow:
        row = await self.api.adapter.lock_document(
            ctx.tx, id=parse_id(id), published_data=published_data
        )
        if row.type != self.type_name:
            raise NotFoundError(f"{self.type_name} {id} not found")
        # Written in this unit of work, not at once: what this process kept of it is then stale.
        written_documents(ctx.registry).forget(row.organization_id, row.type, row.id)
        return row

    async def _locked_or_unsaved(
        self,
        ctx: Context,
        schema_type: SchemaType,
        id: str | uuid.UUID,
        expected_revision: int | None,
        *,
        published_data: bool = True,
    ) -> DocumentRow | None:
        """The locked document, or None for a singleton never saved (which reads as empty, at
        revision 0: `expected_revision` is checked against that)."""
        try:
            return await self._locked(ctx, id, published_data=published_data)
        except NotFoundError:
            if not self._is_singleton_id(ctx, schema_type, id):
                raise
        check_revision(empty_row(ctx.organization_id, self.type_name), expected_revision)
        return None

    async def _readable(self, ctx: Context, id: str | uuid.UUID) -> DocumentRow:
        row = await self.api.adapter.find_document(ctx.tx, id=parse_id(id))
        if row is None or row.type != self.type_name:
            raise NotFoundError(f"{self.type_name} {id} not found")
        return row


def _singleton_exists(type_name: str) -> SingletonExistsError:
    return SingletonExistsError(
        f"'{type_name}' is a singleton type and its document exists: update it instead"
    )
