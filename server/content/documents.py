"""The document lifecycle in SQL: create, draft save, publish, unpublish, delete, and version history.

Every method runs on the caller's org-scoped transaction, so Row-Level Security applies to each
statement. Validation and reference extraction happen above (`server/engine/local_api.py`); this layer keeps
the rows, the version history and the reference index consistent.

Concurrency:
- A draft save and a publish write a document their transaction has locked (`lock_document`, a
  statement of its own), so a draft save with `expected_revision` is a compare-and-swap on
  `revision`: a stale one raises `ConflictError` and writes nothing.
- Version numbers are `max + 1`, computed by a statement that runs *after* the statement that locked
  the document row. Under READ COMMITTED that second statement takes a fresh snapshot which already
  contains every version committed by a writer we waited for, so numbers stay unique and gapless.
  (Computing it in the same statement as the lock would use the pre-lock snapshot: duplicates.)
  The write itself, its version and its reference index are then one statement.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from server.db.pool import Database, NotWritten, Tx
from server.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError

DOCUMENT_COLUMNS = (
    "id, organization_id, type, status, draft_data, published_data, published_hash, draft_hash,"
    " revision, created_by, updated_by, published_at, created_at, updated_at"
)
# The lock read of a write that needs the draft, but of the published data only whether there is
# any (a draft save and a publish): an empty object stands for it, which is what `is_published`
# reads.
_LOCK_COLUMNS = DOCUMENT_COLUMNS.replace(
    "published_data",
    "CASE WHEN published_data IS NULL THEN NULL ELSE '{}'::jsonb END AS published_data",
    1,
)
# The same without the draft either, for a caller that answers from the row's own fields (a direct
# write): PostgreSQL need not print the JSON, nor this process decode it.
DATALESS_COLUMNS = _LOCK_COLUMNS.replace("draft_data", "NULL::jsonb AS draft_data", 1)

# What follows every write of a document: write the version, prune old draft versions beyond the
# retention, and bring the plane's reference index up to date; the CTEs touch disjoint rows. The
# version number is `max + 1` of a snapshot taken after the document's row was locked (see above).
# `pruned` deletes the drafts older than the newest `retention - 1` (the new one makes `retention`):
# up to and including the first one past them, found by one short walk of the index from the
# newest (nothing when there are not that many), rather than every draft checked against a list.
# `outbox` records the change for webhooks and cache purges (`server/delivery/outbox_worker.py`) in the same
# statement, so it commits or rolls back with it, but only a change something will hear of: one an
# enabled webhook of the organization listens for (its event, its document types), or a change to
# published content while the process purges caches (`{purging}`: `DocumentStore.queue_purges`).
# An event nobody hears of would cost an insert here and a pass of the worker to throw it away.
# `targets` are the references whose target the writer can read, and `wrong` those whose type the
# field does not take; the caller then raises, and the transaction (the request's unit of work) is
# rolled back.
_VERSION = """
version AS (
    INSERT INTO cms_document_versions
        (document_id, organization_id, version_number, event_type, data, created_by, restored_from)
    SELECT $1, $2, coalesce(max(version_number), 0) + 1, $3::version_event, $4, $5, $15
      FROM cms_document_versions WHERE document_id = $1
    RETURNING version_number
),"""
_PRUNED = """ pruned AS (
    DELETE FROM cms_document_versions
     WHERE $3 = 'draft' AND $6 > 0 AND document_id = $1 AND event_type = 'draft'
       AND version_number <= (SELECT version_number FROM cms_document_versions
                               WHERE document_id = $1 AND event_type = 'draft'
                               ORDER BY version_number DESC OFFSET greatest($6 - 1, 0) LIMIT 1)
),"""


def _listened(event: str, org: str, type: str) -> str:
    """SQL: whether one of the organization `org`'s enabled webhooks listens for `event` about a
    document of the type `type` (all three SQL expressions)."""
    return f"""EXISTS (
           SELECT 1 FROM cms_webhooks w
            WHERE w.organization_id = {org} AND w.enabled AND {event} = ANY (w.events)
              AND (w.document_types IS NULL OR {type} = ANY (w.document_types)))"""


_REFERENCED_DOCUMENTS = """ refs_gone AS (
    DELETE FROM cms_document_references
     WHERE referencer_id = $1 AND plane = $7 AND ref_id <> ALL($8::uuid[])
), refs_new AS (
    INSERT INTO cms_document_references (referencer_id, ref_id, plane, organization_id)
    SELECT $1, d.id, $7, $2 FROM cms_documents d WHERE d.id = ANY($8::uuid[])
    ON CONFLICT DO NOTHING
),"""
_REFERENCED_ASSETS = """ assets_gone AS (
    DELETE FROM cms_asset_references r
     WHERE r.document_id = $1 AND r.plane = $7
       AND NOT EXISTS (SELECT 1 FROM unnest($9::text[], $10::uuid[]) AS n(path, asset)
                        WHERE n.path = r.field_path AND n.asset = r.asset_id)
), assets_new AS (
    INSERT INTO cms_asset_references
        (document_id, plane, field_path, asset_id, organization_id, document_type)
    SELECT $1, $7, n.path, a.id, $2, $11
      FROM unnest($9::text[], $10::uuid[]) AS n(path, asset) JOIN cms_assets a ON a.id = n.asset
    ON CONFLICT (document_id, plane, field_path) DO UPDATE SET asset_id = EXCLUDED.asset_id
    RETURNING 1
),"""
_OUTBOX_AND_WRONG = f""" outbox AS (
    INSERT INTO cms_outbox (organization_id, document_id, document_type, event)
    SELECT $2, $1, $11, e.event
      FROM (SELECT CASE WHEN $3 = 'publish' THEN 'document.published'
                        ELSE 'document.draft_saved' END AS event) e
     WHERE ({{purging}} AND $3 = 'publish') OR {_listened("e.event", "$2", "$11")}
    RETURNING 1
), targets AS (
    SELECT n.path, d.type, n.allowed, n.at
      FROM unnest($12::text[], $13::uuid[], $14::text[]) WITH ORDINALITY AS n(path, ref, allowed, at)
      JOIN cms_documents d ON d.id = n.ref
), wrong AS (
    SELECT * FROM targets WHERE type <> ALL(string_to_array(allowed, ','))
)"""


@dataclass(frozen=True)
class IndexWork:
    """The parts of a write's statement that often change nothing: the prune of old draft
    versions, and the reference index's documents and assets for the plane written.

    Each part costs PostgreSQL 50 to 100 µs to set up even when it changes nothing (a modifying
    CTE opens its table and every index of it): together most of what a draft save costs beyond
    its UPDATE and its version. A write leaves a part out only when it knows that the part would
    change nothing (`_work`); the full statement is always right.
    """

    prune: bool = True
    documents: bool = True
    assets: bool = True


FULL_WORK = IndexWork()

# The parameters that only a left-out part reads, typed as the part types them: PostgreSQL must
# still learn every parameter's type, and a CTE that nothing reads and that modifies nothing is
# never run.
_UNREAD_BY = {
    "prune": ("$6::integer",),
    "documents": ("$8::uuid[]",),
    # $11, the document type, is also the outbox's: typed here as `assets_new` types it first.
    "assets": ("$9::text[]", "$10::uuid[]", "$11::varchar"),
}


def _after_write_ctes(work: IndexWork, *, publish: bool = False) -> str:
    """The CTEs that follow the write of a document's row: its version, the prune (never in a
    publish's statement: see below), the reference index's parts that `work` names, the outbox
    event and the check of the references' target types."""
    parts = [_VERSION]
    unread: list[str] = []
    for name, included, text in (
        ("prune", work.prune and not publish, _PRUNED),
        ("documents", work.documents, _REFERENCED_DOCUMENTS),
        ("assets", work.assets, _REFERENCED_ASSETS),
    ):
        if included:
            parts.append(text)
        else:
            unread += _UNREAD_BY[name]
    if not (work.documents or work.assets):
        unread.append("$7::varchar")  # the plane
    if unread:
        parts.append(f" unread AS (SELECT {', '.join(unread)}),")
    parts.append(_OUTBOX_AND_WRONG)
    return "".join(parts)


# A publish prunes nothing ($3 is never 'draft'), and its statement has no `pruned` at all: it is
# prepared once and run with a generic plan, which PostgreSQL only picks when that plan costs about
# what one planned for the values does. With `pruned` in it, a plan for the values drops it (the
# condition on $3 is false) and a generic plan keeps its estimate, which grows with the versions
# table, until every publish is planned afresh (about as much CPU as the rest of the request).
_WRONG_TARGETS = """(SELECT json_agg(json_build_object('path', path, 'type', type, 'allowed', allowed)
                         ORDER BY at) FROM wrong) AS wrong"""


def _write_facts(work: IndexWork, facts: bool) -> tuple[str, str]:
    """What a draft save or a publish of a saved draft at once tells of the row it left, for the
    next save of the document by this process, which then need not read it
    (`DocumentStore.written_row`): its row version (`written`, the document CTE's `xmin`), the
    number of the version it wrote, and what says whether the reference index now holds exactly the
    references written: the targets found (as `refs_new` finds them), and the assets `assets_new`
    wrote (null when that part does not run: the index held them already). As the additions to
    the document CTE's `RETURNING` and to the statement's columns; nothing without `facts` (a
    write in a unit of work, whose row nobody keeps)."""
    if not facts:
        return "", ""
    assets = "(SELECT count(*) FROM assets_new)" if work.assets else "NULL::bigint"
    return ", xmin::text AS written", (
        "written, (SELECT version_number FROM version) AS version_number,"
        f" (SELECT count(*) FROM targets) AS targets_found, {assets} AS assets_found, "
    )


# Whether the statement queued an outbox event (`queued`). A process that runs the outbox worker
# wakes it after the commit (`DocumentStore.outbox_queued`); one without has the statement notify
# the workers of other processes (delivered at commit), and only when it queued an event: a
# NOTIFY makes commits take turns cluster-wide, so draft saves that queue nothing send none.
_QUEUED = "(SELECT count(*) FROM outbox) AS queued"
_QUEUED_NOTIFY = "(SELECT count(pg_notify('cms_outbox', '')) FROM outbox) AS queued"


def _both(template: str) -> tuple[str, str]:
    """A statement's text without and with the notification (`_QUEUED`, `_QUEUED_NOTIFY`)."""
    return template.replace("{queued}", _QUEUED), template.replace("{queued}", _QUEUED_NOTIFY)


def _with_and_without_data(template: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """`_both` of a write that answers with `{columns}`: every column, and without the data."""
    return (
        _both(template.replace("{columns}", DOCUMENT_COLUMNS)),
        _both(template.replace("{columns}", DATALESS_COLUMNS)),
    )


# A new document's first version, after its INSERT.
@functools.cache
def _first_version(work: IndexWork) -> tuple[str, str]:
    return _both(f"WITH {_after_write_ctes(work)} SELECT {_WRONG_TARGETS}, {{queued}}")


# A write to a locked document and all that follows it, in one statement: the row's UPDATE
# ($16: the new hash) and `_after_write_ctes`. The draft save keeps `data` ($4) as the draft; the
# publish copies the draft, which is `data`, to the published plane.
@functools.cache
def _draft_save(work: IndexWork, *, facts: bool = False) -> tuple[tuple[str, str], tuple[str, str]]:
    returning, columns = _write_facts(work, facts)
    return _with_and_without_data(f"""
WITH document AS (
    UPDATE cms_documents SET draft_data = $4, draft_hash = $16, updated_by = $5,
           updated_at = now(), revision = revision + 1
     WHERE id = $1 RETURNING {DOCUMENT_COLUMNS}{returning}
), {_after_write_ctes(work)}
SELECT {{columns}}, {columns}{_WRONG_TARGETS}, {{queued}} FROM document
""")


# `_draft_save` (without data) for a row read without a lock (`read_for_save_at_once`): the row is
# written only while it is still the version read ($17: its `xmin`), which PostgreSQL checks again
# on the newest row once it has the row's lock; every change to the row, its versions or its index
# writes a new version of the row, so when this statement writes, the version number it computes
# is free and the index is as read (the lock statement's reasons, `IndexState`). The version's data
# is the written row's: when the row is no longer the version read, it is null, which the table
# refuses, so the statement fails and writes nothing (the index's parts included).
@functools.cache
def _draft_save_seen(work: IndexWork) -> tuple[str, str]:
    def seen(text: str) -> str:
        checked = text.replace(
            "     WHERE id = $1 RETURNING", "     WHERE id = $1 AND xmin::text = $17 RETURNING", 1
        )
        written = checked.replace(
            ", $4, $5, $15", ", (SELECT draft_data FROM document), $5, $15", 1
        )
        if checked == text or written == checked:
            raise RuntimeError("_draft_save_seen: the draft save is not the text this changes")
        return written

    plain, notify = _draft_save(work, facts=True)[1]
    return seen(plain), seen(notify)


@functools.cache
def _publish(work: IndexWork) -> tuple[tuple[str, str], tuple[str, str]]:
    return _with_and_without_data(f"""
WITH document AS (
    UPDATE cms_documents SET status = 'published', published_data = draft_data,
           published_hash = $16, published_at = now(), updated_at = now(), updated_by = $5
     WHERE id = $1 RETURNING {DOCUMENT_COLUMNS}
), {_after_write_ctes(work, publish=True)}
SELECT {{columns}}, {_WRONG_TARGETS}, {{queued}} FROM document
""")


# A publish of a draft this process saved and found publishable (`server/content/publishable.py`),
# without the statement that locks and reads the row first: the row is written only while it is
# still that draft ($17: its revision, $16: its hash), not published as it is, and with the
# published hash the save found ($18), so that the published plane of the reference index is still
# the one the save found (`IndexState`). Each change that writes a version either moves `revision`
# (a save, a restore) or changes `published_hash` (a publish, an unpublish), and PostgreSQL checks
# the condition again on the newest row once it has the row's lock, so when this statement writes,
# no version was committed since its snapshot was taken: the version number it computes is free
# (the reason for the lock statement of the other writes). The version's data is the draft's own
# (`$4` is null). When the row is no longer that draft, the version's data is null, which the table
# refuses: the statement fails and writes nothing. (Should an unpublish and a publish of that very
# draft by another process both commit in between, the row is as the save left it again, and the
# version number's unique constraint refuses the number taken.)
@functools.cache
def _publish_saved(work: IndexWork, *, facts: bool = False) -> tuple[str, str]:
    returning, columns = _write_facts(work, facts)
    after = _after_write_ctes(work, publish=True)
    version_data = "coalesce($4::jsonb, (SELECT draft_data FROM document)),"
    if "$4," not in after:
        raise RuntimeError("_publish_saved: the version's data is not the draft's")
    return _both(f"""
WITH document AS (
    UPDATE cms_documents SET status = 'published', published_data = draft_data,
           published_hash = $16, published_at = now(), updated_at = now(), updated_by = $5
     WHERE id = $1 AND type = $11 AND revision = $17 AND draft_hash = $16
       AND published_hash IS DISTINCT FROM $16 AND published_hash IS NOT DISTINCT FROM $18
     RETURNING {DOCUMENT_COLUMNS}{returning}
), {after.replace("$4,", version_data, 1)}
SELECT {DATALESS_COLUMNS}, {columns}{_WRONG_TARGETS}, {{queued}} FROM document
""")


# Unpublishing empties the published plane of the reference index, and records the event.
_UNPUBLISH = _both(f"""
WITH document AS (
    UPDATE cms_documents SET status = 'draft', published_data = NULL,
           published_hash = NULL, updated_at = now(), updated_by = $2
     WHERE id = $1 RETURNING {DOCUMENT_COLUMNS}
), refs AS (
    DELETE FROM cms_document_references WHERE referencer_id = $1 AND plane = 'published'
), assets AS (
    DELETE FROM cms_asset_references WHERE document_id = $1 AND plane = 'published'
), outbox AS (
    INSERT INTO cms_outbox (organization_id, document_id, document_type, event)
    SELECT organization_id, id, type, 'document.unpublished' FROM document d
     WHERE {{purging}} OR {_listened("'document.unpublished'", "d.organization_id", "d.type")}
    RETURNING 1
)
SELECT {DOCUMENT_COLUMNS}, {{queued}} FROM document
""")
_DELETE = _both(f"""
WITH gone AS (
    DELETE FROM cms_documents WHERE id = $1 RETURNING id, organization_id, type
), outbox AS (
    INSERT INTO cms_outbox (organization_id, document_id, document_type, event)
    SELECT organization_id, id, type, 'document.deleted' FROM gone g
     WHERE {{purging}} OR {_listened("'document.deleted'", "g.organization_id", "g.type")}
    RETURNING 1
)
SELECT id, {{queued}} FROM gone
""")


class DraftMovedError(ConflictError):
    """A publish of a saved draft found the document changed since (`publish_saved_draft`)."""


@functools.cache
def _purging(text: str, queue_purges: bool) -> str:
    return text.replace("{purging}", "true" if queue_purges else "false")


@dataclass(frozen=True)
class DocumentRow:
    id: uuid.UUID
    organization_id: uuid.UUID
    type: str
    status: str
    # A row read or written without its data (`DATALESS_COLUMNS`, the `_row` calls of the local
    # API) has no draft, and an empty object for published data when there is any.
    draft_data: dict[str, Any] | None
    published_data: dict[str, Any] | None
    published_hash: str | None
    draft_hash: str | None
    revision: int
    created_by: str | None
    updated_by: str | None
    published_at: datetime | None
    # None only on a singleton never saved (`server.content.singletons.empty_row`).
    created_at: datetime | None
    updated_at: datetime | None
    # What the reference index holds for the document, read with the lock (`lock_document`);
    # None on any other row.
    index: IndexState | None = None
    # The row version read (its `xmin`) by a read for a write that goes ahead only while the row
    # is still that version (`read_for_save_at_once`); None on any other row.
    seen: str | None = None

    @property
    def is_published(self) -> bool:
        return self.status == "published" and self.published_data is not None

    @property
    def has_unpublished_changes(self) -> bool:
        return not self.is_published or self.draft_hash != self.published_hash

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> DocumentRow:
        return cls(*(row[name] for name in _ROW_FIELDS))


_ROW_FIELDS = tuple(name.strip() for name in DOCUMENT_COLUMNS.split(","))


@dataclass(frozen=True)
class References:
    """What a document's data points at: documents by id, and assets by field path."""

    documents: tuple[uuid.UUID, ...] = ()
    assets: tuple[tuple[str, uuid.UUID], ...] = ()
    # Each document reference as (path, id, the types its field takes): checked when written.
    targets: tuple[tuple[str, uuid.UUID, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class PlaneIndex:
    """What the reference index holds for one plane of a document: the documents it points at, and
    its assets by field path."""

    documents: frozenset[uuid.UUID] = frozenset()
    assets: frozenset[tuple[str, uuid.UUID]] = frozenset()


@dataclass(frozen=True)
class IndexState:
    """What the reference index holds for a document, and whether a draft save would prune its
    versions, as the statement that locked its row found them (`_INDEX_COLUMNS`)."""

    draft: PlaneIndex
    published: PlaneIndex
    prune_due: bool

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> IndexState | None:
        """The state the lock statement read, or None when it may not be the locked row's."""
        if not row["index_current"]:
            return None
        documents: dict[str, set[uuid.UUID]] = {"draft": set(), "published": set()}
        for entry in row["indexed_documents"]:
            plane, target = entry.split(" ", 1)
            documents[plane].add(uuid.UUID(target))
        assets: dict[str, set[tuple[str, uuid.UUID]]] = {"draft": set(), "published": set()}
        for entry in row["indexed_assets"]:
            plane, asset, path = entry.split(" ", 2)
            assets[plane].add((path, uuid.UUID(asset)))
        return cls(
            draft=PlaneIndex(frozenset(documents["draft"]), frozenset(assets["draft"])),
            published=PlaneIndex(frozenset(documents["published"]), frozenset(assets["published"])),
            prune_due=row["prune_due"],
        )


def _work(held: PlaneIndex | None, references: References, *, prune: bool = False) -> IndexWork:
    """What a write of `references` to a plane whose index holds `held` must run (everything when
    that is not known); the prune only with `prune`."""
    if held is None:
        return FULL_WORK
    return IndexWork(
        prune=prune,
        documents=held.documents != frozenset(references.documents),
        assets=held.assets != frozenset(references.assets),
    )


# What the lock statement reads beside the row (`IndexState`). The subqueries run in the statement's
# snapshot, taken before it waited for the row's lock: when another transaction wrote the row
# meanwhile, the locked row is that newer version, and the index they read may predate it. Every
# change to a document's index writes its row in the same statement, so the index they read is the
# locked row's exactly when the snapshot's version of the row is the locked one (the same `xmin`).
# `prune_due`: a draft save's `pruned` may delete some of the document's versions, as it has as many
# versions in all as the retention (`$2`), or more (version numbers are gapless from 1; counting the
# drafts themselves would read every version's row, about as costly as the prune).
_INDEX_COLUMNS = """
  (SELECT s.xmin = d.xmin FROM cms_documents s WHERE s.id = d.id) AS index_current,
  ARRAY(SELECT r.plane || ' ' || r.ref_id FROM cms_document_references r
         WHERE r.referencer_id = d.id) AS indexed_documents,
  ARRAY(SELECT a.plane || ' ' || a.asset_id || ' ' || a.field_path FROM cms_asset_references a
         WHERE a.document_id = d.id) AS indexed_assets,
  (SELECT max(v.version_number) FROM cms_document_versions v
    WHERE v.document_id = d.id) >= $2 AS prune_due"""


@dataclass(frozen=True)
class Version:
    document_id: uuid.UUID
    version_number: int
    event_type: str  # draft, publish or restore
    data: dict[str, Any]
    created_by: str | None
    created_at: datetime
    restored_from: int | None = None  # the version a restore made the draft again


def check_revision(document: DocumentRow, expected_revision: int | None) -> None:
    """Raise `ConflictError` unless the (locked) document is at `expected_revision` (None: any)."""
    if expected_revision is not None and expected_revision != document.revision:
        raise ConflictError(
            f"the document changed: expected revision {expected_revision},"
            f" it is at {document.revision}",
            current_revision=document.revision,
        )


class DocumentStore:
    """Document rows, versions and the reference index, on the caller's transaction."""

    version_retention: int = 50
    # Set by a process that runs the outbox worker (`server/services.py`): called after the commit
    # of a transaction whose write queued an outbox event, to wake the worker. Unset, the write
    # statement notifies `cms_outbox` itself (`_QUEUED_NOTIFY`).
    outbox_queued: Callable[[], object] | None = None
    # Whether a change to published content (publish, unpublish, delete) queues an outbox event for
    # the caches' purge even when no webhook listens: the process purges caches (`PURGE_URLS`, set
    # alike on every process, as the worker that takes the event purges with its own). Off, only the
    # events a webhook listens for are queued.
    queue_purges: bool = True

    async def create_document(
        self,
        tx: Tx,
        *,
        type: str,
        data: dict[str, Any],
        draft_hash: str,
        references: References,
        created_by: str | None = None,
        id: uuid.UUID | None = None,
    ) -> DocumentRow:
        """Insert a draft (revision 1) with its first version and its draft reference index."""
        row = await tx.fetchrow(
            f"INSERT INTO cms_documents (id, organization_id, type, status, draft_data, draft_hash,"
            f" created_by, updated_by)"
            f" VALUES (coalesce($1, gen_random_uuid()), (select cms_current_org()), $2, 'draft',"
            f" $3, $4, $5, $5)"
            f" RETURNING {DOCUMENT_COLUMNS}",
            id,
            type,
            data,
            draft_hash,
            created_by,
        )
        assert row is not None
        document = DocumentRow.from_record(row)
        await self._after_write(tx, document, "draft", data, created_by, references)
        return document

    async def update_draft(
        self,
        tx: Tx,
        *,
        document: DocumentRow,
        data: dict[str, Any],
        draft_hash: str,
        references: References,
        updated_by: str | None = None,
        expected_revision: int | None = None,
        restored_from: int | None = None,
        with_data: bool = True,
    ) -> DocumentRow:
        """Replace the draft of a document locked by `lock_document`, with its version, in one
        statement; a stale `expected_revision` raises ConflictError and changes nothing.

        The version is a `restore` naming `restored_from` when given, else a `draft`. Without
        `with_data`, the row comes back without its data (`DATALESS_COLUMNS`).
        """
        check_revision(document, expected_revision)
        work, arguments = self._draft_save_work(
            document, data, draft_hash, references, updated_by, restored_from
        )
        sql = self._text(_draft_save(work)[0 if with_data else 1])
        return await self._write(tx, sql, document.type, *arguments, draft_hash)

    def _draft_save_work(
        self,
        document: DocumentRow,
        data: dict[str, Any],
        draft_hash: str,
        references: References,
        updated_by: str | None,
        restored_from: int | None,
    ) -> tuple[IndexWork, tuple[Any, ...]]:
        """A draft save's parts to run and `_after_write_ctes`'s arguments."""
        event = "draft" if restored_from is None else "restore"
        arguments = self._after_write_arguments(
            document.id,
            document.organization_id,
            document.type,
            event,
            data,
            updated_by,
            references,
            restored_from,
        )
        index = document.index
        prune = (
            index is not None
            and index.prune_due
            and event == "draft"
            and self.version_retention > 0
        )
        return _work(index.draft if index else None, references, prune=prune), arguments

    async def read_for_save_at_once(
        self,
        database: Database,
        opening: Sequence[Any],
        *,
        cancel_after: float | None,
        id: uuid.UUID,
    ) -> DocumentRow | None:
        """A document of the caller's organization, without its data but the draft, with what the
        reference index holds for it and the row version read (`seen`), in one statement that
        opens a known caller's request (`Database.run_at_once`): for `save_draft_at_once`. None
        when there is no such document (the unit of work then answers why).

        Raises:
            NotWritten: PostgreSQL refused it (the caller's facts changed, ...).
        """
        row = await database.run_at_once(
            opening,
            f"SELECT {_LOCK_COLUMNS}, d.xmin::text AS seen, {_INDEX_COLUMNS} FROM cms_documents d"
            " WHERE id = $1 AND organization_id = (select cms_current_org())",
            id,
            self.version_retention,
            cancel_after=cancel_after,
            refuse_wrong=False,
        )
        if row is None:
            return None
        return replace(
            DocumentRow.from_record(row), index=IndexState.from_record(row), seen=row["seen"]
        )

    async def save_draft_at_once(
        self,
        database: Database,
        opening: Sequence[Any],
        *,
        cancel_after: float | None,
        document: DocumentRow,
        data: dict[str, Any],
        draft_hash: str,
        references: References,
        updated_by: str | None = None,
    ) -> DocumentRow:
        """`update_draft` of a document `read_for_save_at_once` read, without a lock: in one
        statement that opens a known caller's request, writes only while the row is still the
        version read, and commits (`Database.run_at_once`). The row comes back without its data.

        Raises:
            NotWritten: nothing was written (the row changed since it was read, a target of a
                wrong type, ...): save in a unit of work instead.
            UnavailableError, TimedOutError: the statement may have been committed.
        """
        if document.seen is None:
            raise NotWritten("the document was not read for a save at once")
        work, arguments = self._draft_save_work(
            document, data, draft_hash, references, updated_by, None
        )
        sql = self._text(_draft_save_seen(work))
        row = await database.run_at_once(
            opening, sql, *arguments, draft_hash, document.seen, cancel_after=cancel_after
        )
        if row is None:
            raise NotWritten(f"document {document.id} is gone")
        if row["queued"] and self.outbox_queued is not None:
            self.outbox_queued()
        return self.written_row(row, references, before=document.index, plane="draft")

    async def lock_document(
        self, tx: Tx, *, id: uuid.UUID, published_data: bool = True
    ) -> DocumentRow:
        """Read a document of the current org with its row locked until the transaction ends,
        and what the reference index holds for it (`DocumentRow.index`).

        Without `published_data`, the published data is only told apart from none (an empty
        object): for a write that copies or replaces the draft and never reads it.
        """
        columns = DOCUMENT_COLUMNS if published_data else _LOCK_COLUMNS
        row = await tx.fetchrow_kept(
            f"SELECT {columns}, {_INDEX_COLUMNS} FROM cms_documents d"
            f" WHERE id = $1 AND organization_id = (select cms_current_org()) FOR UPDATE",
            id,
            self.version_retention,
        )
        if row is None:
            await self._explain_missing_write(tx, id)
        assert row is not None
        return replace(DocumentRow.from_record(row), index=IndexState.from_record(row))

    async def publish_document(
        self,
        tx: Tx,
        *,
        document: DocumentRow,
        published_hash: str,
        references: References,
        published_by: str | None = None,
        expected_revision: int | None = None,
        with_data: bool = True,
    ) -> DocumentRow:
        """Copy the draft of a document locked by `lock_document` (and validated) to the published
        plane, with a publish version, in one statement. Without `with_data`, the row comes back
        without its data (`DATALESS_COLUMNS`)."""
        check_revision(document, expected_revision)
        arguments = self._after_write_arguments(
            document.id,
            document.organization_id,
            document.type,
            "publish",
            document.draft_data or {},
            published_by,
            references,
            None,
        )
        index = document.index
        work = _work(index.published if index else None, references)
        sql = self._text(_publish(work)[0 if with_data else 1])
        return await self._write(tx, sql, document.type, *arguments, published_hash)

    async def publish_saved_draft(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        organization_id: uuid.UUID,
        type: str,
        revision: int,
        draft_hash: str,
        references: References,
        published_hash: str | None,
        published_index: PlaneIndex | None,
        published_by: str | None = None,
    ) -> DocumentRow:
        """Publish the document while its draft is still the one saved at `revision` with
        `draft_hash` (and found publishable, with `references`), and its published hash still the
        one the save found (`published_hash`, with the published plane's index `published_index`
        when the save knew it), without locking it first: one statement. The row comes back
        without its data (`DATALESS_COLUMNS`).

        Raises:
            DraftMovedError: the document is no longer that draft, or is published as it is, or
                is gone. Nothing was written, but the transaction is failed: roll it back.
        """
        sql, arguments = self._publish_saved_statement(
            id,
            organization_id,
            type,
            revision,
            draft_hash,
            references,
            published_hash,
            published_index,
            published_by,
            at_once=False,
        )
        try:
            row = await tx.fetchrow_kept(sql, *arguments)
        except (asyncpg.NotNullViolationError, asyncpg.UniqueViolationError) as exc:
            # Not null: the row is no longer that draft. Unique: it still is, but a version was
            # committed since the snapshot all the same (a publish and an unpublish by another
            # process in between); the version's unique number refuses the duplicate.
            if exc.table_name != "cms_document_versions":
                raise
            raise DraftMovedError(f"document {id} changed since it was saved") from None
        if row is None:
            raise DraftMovedError(f"document {id} changed since it was saved")
        if row["wrong"]:
            _refuse_targets(type, row["wrong"])
        self._queued(tx, row["queued"])
        return DocumentRow.from_record(row)

    async def publish_saved_draft_at_once(
        self,
        database: Database,
        opening: Sequence[Any],
        *,
        cancel_after: float | None,
        id: uuid.UUID,
        organization_id: uuid.UUID,
        type: str,
        revision: int,
        draft_hash: str,
        references: References,
        published_hash: str | None,
        published_index: PlaneIndex | None,
        published_by: str | None = None,
        index: IndexState | None = None,
    ) -> DocumentRow:
        """`publish_saved_draft` for a known caller, with no transaction around it: the opening
        and the publish in one statement, committed as it ends (`Database.run_at_once`).

        `index`: what the reference index held after the save (`written_row`), if known, for the
        row to say what it holds after the publish.

        Raises:
            NotWritten: nothing was written (the document is no longer that draft, the caller's
                facts changed, a target of a wrong type, ...): publish in a transaction instead.
            UnavailableError, TimedOutError: the statement may have been committed.
        """
        sql, arguments = self._publish_saved_statement(
            id,
            organization_id,
            type,
            revision,
            draft_hash,
            references,
            published_hash,
            published_index,
            published_by,
            at_once=True,
        )
        row = await database.run_at_once(opening, sql, *arguments, cancel_after=cancel_after)
        if row is None:
            raise NotWritten(f"document {id} changed since it was saved")
        if row["queued"] and self.outbox_queued is not None:
            self.outbox_queued()
        return self.written_row(row, references, before=index, plane="published")

    def written_row(
        self, row: asyncpg.Record, references: References, *, before: IndexState | None, plane: str
    ) -> DocumentRow:
        """The row a write of `references` to `plane` left (`_write_facts`), as a save that does
        not read the document first needs it (`server/content/written.py`): its row version
        (`seen`), and what the reference index holds for it when that is known exactly (the
        other plane's as `before` says, and every reference's target found), else None."""
        index = None
        found_all = row["targets_found"] == len(references.targets) and row["assets_found"] in (
            None,
            len(references.assets),
        )
        if before is not None and found_all:
            written = PlaneIndex(frozenset(references.documents), frozenset(references.assets))
            index = IndexState(
                draft=written if plane == "draft" else before.draft,
                published=written if plane == "published" else before.published,
                # Version numbers only grow: as `_INDEX_COLUMNS` computes it.
                prune_due=row["version_number"] >= self.version_retention,
            )
        return replace(DocumentRow.from_record(row), seen=row["written"], index=index)

    def _publish_saved_statement(
        self,
        id: uuid.UUID,
        organization_id: uuid.UUID,
        type: str,
        revision: int,
        draft_hash: str,
        references: References,
        published_hash: str | None,
        published_index: PlaneIndex | None,
        published_by: str | None,
        *,
        at_once: bool,
    ) -> tuple[str, tuple[Any, ...]]:
        """The publish of a saved draft (`_publish_saved`, with what it left when `at_once`) and
        its arguments."""
        # No data: the version's is the draft's own.
        arguments = self._after_write_arguments(
            id, organization_id, type, "publish", None, published_by, references, None
        )
        work = _work(published_index, references)
        sql = self._text(_publish_saved(work, facts=at_once))
        return sql, (*arguments, draft_hash, revision, published_hash)

    async def unpublish_document(
        self, tx: Tx, *, id: uuid.UUID, updated_by: str | None = None
    ) -> DocumentRow:
        """Back to draft, the published plane of the reference index emptied, in one statement."""
        row = await tx.fetchrow(self._text(_UNPUBLISH), id, updated_by)
        if row is None:
            await self._explain_missing_write(tx, id)
        assert row is not None
        self._queued(tx, row["queued"])
        return DocumentRow.from_record(row)

    async def delete_document(self, tx: Tx, *, id: uuid.UUID) -> None:
        """Delete the document; its versions and reference rows go with it (foreign-key cascade)."""
        deleted = await tx.fetchrow(self._text(_DELETE), id)
        if deleted is None:
            await self._explain_missing_write(tx, id)
        else:
            self._queued(tx, deleted["queued"])

    async def find_document(self, tx: Tx, *, id: uuid.UUID) -> DocumentRow | None:
        """Any readable document (the current org or a descendant), whatever its status."""
        row = await tx.fetchrow(f"SELECT {DOCUMENT_COLUMNS} FROM cms_documents WHERE id = $1", id)
        return DocumentRow.from_record(row) if row is not None else None

    async def list_versions(
        self, tx: Tx, *, document_id: uuid.UUID, limit: int = 20, offset: int = 0
    ) -> tuple[list[Version], int]:
        """Versions newest first, and how many there are in all."""
        rows = await tx.fetch(
            "SELECT document_id, version_number, event_type::text AS event_type, data, created_by,"
            " created_at, restored_from, count(*) OVER () AS total FROM cms_document_versions"
            " WHERE document_id = $1 ORDER BY version_number DESC LIMIT $2 OFFSET $3",
            document_id,
            limit,
            offset,
        )
        total = rows[0]["total"] if rows else 0
        if not rows and offset > 0:
            total = await tx.fetchval(
                "SELECT count(*) FROM cms_document_versions WHERE document_id = $1", document_id
            )
        return [_version(row) for row in rows], total

    async def get_version(
        self, tx: Tx, *, document_id: uuid.UUID, version_number: int
    ) -> Version | None:
        row = await tx.fetchrow(
            "SELECT document_id, version_number, event_type::text AS event_type, data, created_by,"
            " created_at, restored_from FROM cms_document_versions"
            " WHERE document_id = $1 AND version_number = $2",
            document_id,
            version_number,
        )
        return _version(row) if row is not None else None

    async def _after_write(
        self,
        tx: Tx,
        document: DocumentRow,
        event: str,
        data: dict[str, Any],
        user: str | None,
        references: References,
    ) -> None:
        arguments = self._after_write_arguments(
            document.id,
            document.organization_id,
            document.type,
            event,
            data,
            user,
            references,
            None,
        )
        # A new document has nothing in the index, and no version to prune.
        work = _work(PlaneIndex(), references)
        row = await tx.fetchrow_kept(self._text(_first_version(work)), *arguments)
        assert row is not None
        if row["wrong"]:
            _refuse_targets(document.type, row["wrong"])
        self._queued(tx, row["queued"])

    async def _write(self, tx: Tx, sql: str, type_name: str, *arguments: Any) -> DocumentRow:
        row = await tx.fetchrow_kept(sql, *arguments)
        assert row is not None  # the row is locked: it is there
        if row["wrong"]:
            _refuse_targets(type_name, row["wrong"])
        self._queued(tx, row["queued"])
        return DocumentRow.from_record(row)

    def _text(self, statement: tuple[str, str]) -> str:
        """The statement's text: with the notification unless this process wakes its worker, and
        queueing purges or not."""
        return _purging(
            statement[0] if self.outbox_queued is not None else statement[1], self.queue_purges
        )

    def _queued(self, tx: Tx, queued: int) -> None:
        if queued and self.outbox_queued is not None:
            tx.after_commit(self.outbox_queued)

    def _after_write_arguments(
        self,
        id: uuid.UUID,
        organization_id: uuid.UUID,
        type: str,
        event: str,
        data: dict[str, Any] | None,
        user: str | None,
        references: References,
        restored_from: int | None,
    ) -> tuple[Any, ...]:
        """`_after_write_ctes`'s $1 to $15, for the document `id` of `type` in `organization_id`."""
        return (
            id,
            organization_id,
            event,
            data,
            user,
            self.version_retention,
            "published" if event == "publish" else "draft",
            list(references.documents),
            [path for path, _ in references.assets],
            [asset for _, asset in references.assets],
            type,
            [path for path, _, _ in references.targets],
            [ref for _, ref, _ in references.targets],
            [",".join(to) for _, _, to in references.targets],
            restored_from,
        )

    async def _explain_missing_write(self, tx: Tx, id: uuid.UUID) -> None:
        """A write found no row: say why (another org's document, or absent)."""
        row = await tx.fetchrow(
            "SELECT organization_id = (select cms_current_org()) AS own"
            " FROM cms_documents WHERE id = $1",
            id,
        )
        if row is None:
            raise NotFoundError(f"document {id} not found")
        if not row["own"]:
            raise ForbiddenError(
                f"document {id} belongs to another organization; writes are only permitted in"
                " the current organization"
            )
        raise InvalidInputError(f"document {id} cannot be written")


def _refuse_targets(type_name: str, wrong: list[dict[str, str]]) -> None:
    problems = [
        {
            "path": w["path"],
            "rule": "reference",
            "message": f"refers to a {w['type']} document; it takes {' or '.join(w['allowed'].split(','))}",
        }
        for w in wrong
    ]
    summary = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
    raise InvalidInputError(
        f"invalid {type_name} document: {summary}", path=problems[0]["path"], errors=problems
    )


def _version(row: asyncpg.Record) -> Version:
    return Version(
        document_id=row["document_id"],
        version_number=row["version_number"],
        event_type=row["event_type"],
        data=row["data"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        restored_from=row["restored_from"],
    )
