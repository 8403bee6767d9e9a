"""JSON forms inline a reference only as a document of a type its field takes.

`cms_inline` and `cms_render` (migration 0005) inlined any readable target, so `_raw`,
`documents(depth: n)` and JSON fields showed a reference of the wrong type as that document: one
stored before saves checked the target's type, or left by a schema change that narrowed a field's
`to`. They now take the content model's reference map (`server/model/reference_paths.py`, built from
the schema the server runs, written into the statement as a literal) and walk the data with it:

- `cms_render(..., paths)` walks each top-level key with the node `paths -> type -> key`;
- `cms_inline(value, remaining, path, published, paths, node)` walks a value whose place in its
  document is `node` (a JSON field's node, or NULL where the schema declares no reference);
- a reference whose node has `to` is inlined only when the target's type is in it, else it stays
  the reference (the stub), as a missing or unreadable target does. Objects pass on the node of
  each key (`fields`, or the named object type's entry `paths -> type`), arrays that of each item
  (`each`, or `of` by the item's `_type`, a reference item under "reference").

`server/content/references.py` applies the same rules in Python (`reference_paths.takes`, `fields_of`,
`item_of`), and the differential tests hold both paths to byte-identical answers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 12:00:00.000000
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

# op.execute reads `:name` as a bind parameter: no colon in these bodies is followed by a letter or
# a digit outside a `::` cast.
FUNCTIONS = (
    """
CREATE FUNCTION cms_render(
  id uuid, type text, status text, data jsonb, has_published boolean, organization_id uuid,
  created_at timestamptz, updated_at timestamptz, published_at timestamptz,
  published_hash text, draft_hash text, revision integer, created_by text, updated_by text,
  remaining integer, path uuid[], published boolean, paths jsonb
) RETURNS json
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
  body text;
  is_published boolean := status = 'published' AND has_published;
  fields jsonb := paths -> type;
BEGIN
  IF jsonb_typeof(data) = 'object' THEN
    SELECT string_agg(to_json(e.key)::text || chr(58) || cms_inline(e.value, remaining, path,
                      published, paths, fields -> e.key)::text, ',' ORDER BY e.n)
      INTO body FROM jsonb_each(data) WITH ORDINALITY AS e(key, value, n);
  END IF;
  RETURN ('{"id"' || chr(58) || to_json(id::text)::text
    || CASE WHEN body IS NULL THEN '' ELSE ',' || body END
    || ',"_meta"' || chr(58) || json_build_object(
      'type', type,
      'status', CASE WHEN is_published THEN 'published' ELSE 'draft' END,
      'organizationId', organization_id,
      'createdAt', cms_iso_timestamp(created_at),
      'updatedAt', cms_iso_timestamp(updated_at),
      'publishedAt', cms_iso_timestamp(published_at),
      'publishedHash', published_hash,
      'revision', revision,
      'createdBy', created_by,
      'updatedBy', updated_by,
      'hasUnpublishedChanges', NOT is_published OR draft_hash IS DISTINCT FROM published_hash
    )::text || '}')::json;
END
$$
""",
    f"""
CREATE FUNCTION cms_inline_walk(
  value jsonb, remaining integer, path uuid[], published boolean, paths jsonb, node jsonb
) RETURNS json
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
  ref text;
  target record;
  body text;
  asset_holder boolean;
  fields jsonb;
BEGIN
  IF value IS NULL THEN
    RETURN NULL;
  END IF;
  CASE jsonb_typeof(value)
  WHEN 'object' THEN
    IF jsonb_typeof(value -> '_ref') = 'string'
       AND (NOT value ? '_type' OR value -> '_type' = '"reference"'::jsonb) THEN
      ref := value ->> '_ref';
      IF remaining > 0 AND ref ~ '{UUID_PATTERN}' AND NOT ref::uuid = ANY (path) THEN
        SELECT t.* INTO target FROM cms_documents t
         WHERE t.id = ref::uuid
           AND (NOT published OR (t.status = 'published' AND t.published_data IS NOT NULL));
        -- A target of a type the reference's field does not take stays the reference.
        IF FOUND AND (node -> 'to' IS NULL OR node -> 'to' ? target.type::text) THEN
          RETURN cms_render(
            target.id, target.type::text, target.status::text,
            CASE WHEN published THEN target.published_data ELSE target.draft_data END,
            target.published_data IS NOT NULL, target.organization_id,
            target.created_at, target.updated_at, target.published_at,
            target.published_hash, target.draft_hash, target.revision,
            target.created_by, target.updated_by,
            remaining - 1, path || target.id, published, paths);
        END IF;
      END IF;
      RETURN value::json;
    END IF;
    asset_holder := value ->> '_type' IN ('image', 'file');
    fields := CASE WHEN node ? 'type' THEN paths -> (node ->> 'type') ELSE node -> 'fields' END;
    SELECT string_agg(to_json(e.key)::text || chr(58) || CASE
             WHEN asset_holder AND e.key = 'asset' THEN e.value::json::text
             ELSE cms_inline_walk(e.value, remaining, path, published, paths,
                                  fields -> e.key)::text END,
           ',' ORDER BY e.n)
      INTO body FROM jsonb_each(value) WITH ORDINALITY AS e(key, value, n);
    RETURN ('{{' || coalesce(body, '') || '}}')::json;
  WHEN 'array' THEN
    SELECT string_agg(cms_inline_walk(e.value, remaining, path, published, paths, CASE
             WHEN jsonb_typeof(e.value) <> 'object' THEN NULL
             WHEN node ? 'each' THEN node -> 'each'
             WHEN NOT e.value ? '_type' THEN node -> 'of' -> 'reference'
             WHEN jsonb_typeof(e.value -> '_type') = 'string'
               THEN node -> 'of' -> (e.value ->> '_type')
           END)::text, ',' ORDER BY e.n)
      INTO body FROM jsonb_array_elements(value) WITH ORDINALITY AS e(value, n);
    RETURN ('[' || coalesce(body, '') || ']')::json;
  ELSE
    RETURN value::json;
  END CASE;
END
$$
""",
    """
CREATE FUNCTION cms_inline(
  value jsonb, remaining integer, path uuid[], published boolean, paths jsonb, node jsonb
) RETURNS json
LANGUAGE sql STABLE AS $$
  -- Most values hold no reference at all: those are returned as they are, without a walk.
  SELECT CASE
    WHEN value IS NULL THEN NULL
    WHEN remaining <= 0 OR strpos(value::text, '"_ref"') = 0 THEN value::json
    ELSE cms_inline_walk(value, remaining, path, published, paths, node)
  END
$$
""",
)

NAMES = (
    "cms_inline(jsonb, integer, uuid[], boolean, jsonb, jsonb)",
    "cms_inline_walk(jsonb, integer, uuid[], boolean, jsonb, jsonb)",
    "cms_render(uuid, text, text, jsonb, boolean, uuid, timestamptz, timestamptz, timestamptz,"
    " text, text, integer, text, text, integer, uuid[], boolean, jsonb)",
)

# Migration 0005's functions, which this one replaces (and a downgrade restores).
_FORMER: dict[str, tuple[str, ...]] = runpy.run_path(
    str(Path(__file__).with_name("20261202_0005_read_functions.py"))
)  # type: ignore[assignment]
FORMER_NAMES = _FORMER["NAMES"][:3]
FORMER_FUNCTIONS = tuple(
    statement
    for statement in _FORMER["FUNCTIONS"]
    if any(f"CREATE FUNCTION {name.split('(')[0]}(" in statement for name in FORMER_NAMES)
)


def upgrade() -> None:
    for name in FORMER_NAMES:
        op.execute(f"DROP FUNCTION {name}")
    for statement in FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    for name in NAMES:
        op.execute(f"DROP FUNCTION {name}")
    for statement in FORMER_FUNCTIONS:
        op.execute(statement)
