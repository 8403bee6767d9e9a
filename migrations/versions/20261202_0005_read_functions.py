"""Read functions: what the compiled read path (`server/query/`) needs to build responses in SQL.

The compiled path answers a GraphQL query with one statement that builds the response JSON in
PostgreSQL, and its answers must be the ones the resolver path gives. These functions carry the few
rules that are too long to spell out inline in every statement:

- `cms_iso_timestamp(timestamptz)`: a timestamp as Python's `datetime.isoformat()` writes a UTC
  datetime (`2025-01-02T03:04:05.123456+00:00`, no fraction when it is zero).
- `cms_read_date(text)`, `cms_read_datetime(text)`: a stored date or datetime value as the GraphQL
  `Date` / `DateTime` scalar shows it, or NULL when it is not one. Only the ISO 8601 forms the
  validator knows are read (`YYYY-MM-DD`; `YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|+HH:MM]`); a
  datetime is normalised the way Python's `fromisoformat` + `isoformat` do (seconds always,
  fraction cut to microseconds, `Z` and `-00:00` as `+00:00`).
- `cms_inline(value, remaining, path, published)`: any JSON value with its document references
  inlined to `remaining` levels, skipping ids on `path` (cycles) and what the perspective or
  Row-Level Security hides: the rules of `server/content/references.py`, for JSON fields and `_raw`.
- `cms_render(...)`: one document as the local API renders it (`id`, data, `_meta`).

The last two build `json` text (not `jsonb`), so keys keep their order. They run as the caller
(SECURITY INVOKER), so Row-Level Security applies to every document they read. PL/pgSQL without
exception blocks; the others are SQL functions the planner can inline.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

# op.execute reads `:name` as a bind parameter: no colon in these bodies is followed by a letter or
# a digit outside a `::` cast.
FUNCTIONS = (
    """
CREATE FUNCTION cms_iso_timestamp(value timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24') || chr(58)
      || to_char(value AT TIME ZONE 'UTC', 'MI') || chr(58)
      || to_char(value AT TIME ZONE 'UTC', 'SS')
      || CASE WHEN mod(extract(microseconds FROM value)::bigint, 1000000) = 0 THEN ''
              ELSE to_char(value AT TIME ZONE 'UTC', '.US') END
      || '+00' || chr(58) || '00'
$$
""",
    """
CREATE FUNCTION cms_valid_ymd(y integer, m integer, d integer) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT y >= 1 AND m BETWEEN 1 AND 12 AND d >= 1 AND d <= CASE
    WHEN m = 2 THEN CASE WHEN (mod(y, 4) = 0 AND mod(y, 100) <> 0) OR mod(y, 400) = 0 THEN 29 ELSE 28 END
    WHEN m IN (4, 6, 9, 11) THEN 30
    ELSE 31 END
$$
""",
    """
CREATE FUNCTION cms_read_date(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN value IS NULL OR value !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN NULL
    WHEN cms_valid_ymd(substr(value, 1, 4)::int, substr(value, 6, 2)::int,
                       substr(value, 9, 2)::int) THEN value
  END
$$
""",
    # No regexp_match: a pattern with capture groups runs on PostgreSQL's slow regex path (about
    # 100 microseconds a value); a plain match and fixed positions cost about 2.
    """
CREATE FUNCTION cms_read_datetime(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  rest text;
  seconds text := '00';
  fraction text := '';
  zone text := '';
BEGIN
  IF value IS NULL OR value !~ ('^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}[:][0-9]{2}'
                                '(?:[:][0-9]{2}(?:[.][0-9]+)?)?(?:[Z]|[-+][0-9]{2}[:][0-9]{2})?$') THEN
    RETURN NULL;
  END IF;
  IF NOT cms_valid_ymd(substr(value, 1, 4)::int, substr(value, 6, 2)::int, substr(value, 9, 2)::int)
     OR substr(value, 12, 2)::int > 23 OR substr(value, 15, 2)::int > 59 THEN
    RETURN NULL;
  END IF;
  rest := substr(value, 17);
  IF right(rest, 1) = 'Z' THEN
    zone := '+00' || chr(58) || '00';
    rest := left(rest, -1);
  ELSIF length(rest) >= 6 AND substr(rest, length(rest) - 5, 1) IN ('+', '-') THEN
    zone := right(rest, 6);
    rest := left(rest, -6);
    IF substr(zone, 2, 2)::int > 23 OR substr(zone, 5, 2)::int > 59 THEN
      RETURN NULL;
    END IF;
    IF zone = '-00' || chr(58) || '00' THEN
      zone := '+00' || chr(58) || '00';
    END IF;
  END IF;
  IF left(rest, 1) = chr(58) THEN
    seconds := substr(rest, 2, 2);
    rest := substr(rest, 4);
    IF seconds::int > 59 THEN
      RETURN NULL;
    END IF;
  END IF;
  IF left(rest, 1) = '.' THEN
    fraction := rpad(substr(rest, 2, 6), 6, '0');
    fraction := CASE WHEN fraction = '000000' THEN '' ELSE '.' || fraction END;
  END IF;
  RETURN left(value, 16) || chr(58) || seconds || fraction || zone;
END
$$
""",
    """
CREATE FUNCTION cms_render(
  id uuid, type text, status text, data jsonb, has_published boolean, organization_id uuid,
  created_at timestamptz, updated_at timestamptz, published_at timestamptz,
  published_hash text, draft_hash text, revision integer, created_by text, updated_by text,
  remaining integer, path uuid[], published boolean
) RETURNS json
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
  body text;
  is_published boolean := status = 'published' AND has_published;
BEGIN
  IF jsonb_typeof(data) = 'object' THEN
    SELECT string_agg(to_json(e.key)::text || chr(58) || cms_inline(e.value, remaining, path,
                      published)::text, ',' ORDER BY e.n)
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
CREATE FUNCTION cms_inline_walk(value jsonb, remaining integer, path uuid[], published boolean)
RETURNS json
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
  ref text;
  target record;
  body text;
  asset_holder boolean;
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
        IF FOUND THEN
          RETURN cms_render(
            target.id, target.type::text, target.status::text,
            CASE WHEN published THEN target.published_data ELSE target.draft_data END,
            target.published_data IS NOT NULL, target.organization_id,
            target.created_at, target.updated_at, target.published_at,
            target.published_hash, target.draft_hash, target.revision,
            target.created_by, target.updated_by,
            remaining - 1, path || target.id, published);
        END IF;
      END IF;
      RETURN value::json;
    END IF;
    asset_holder := value ->> '_type' IN ('image', 'file');
    SELECT string_agg(to_json(e.key)::text || chr(58) || CASE
             WHEN asset_holder AND e.key = 'asset' THEN e.value::json::text
             ELSE cms_inline_walk(e.value, remaining, path, published)::text END,
           ',' ORDER BY e.n)
      INTO body FROM jsonb_each(value) WITH ORDINALITY AS e(key, value, n);
    RETURN ('{{' || coalesce(body, '') || '}}')::json;
  WHEN 'array' THEN
    SELECT string_agg(cms_inline_walk(e.value, remaining, path, published)::text, ','
                      ORDER BY e.n)
      INTO body FROM jsonb_array_elements(value) WITH ORDINALITY AS e(value, n);
    RETURN ('[' || coalesce(body, '') || ']')::json;
  ELSE
    RETURN value::json;
  END CASE;
END
$$
""",
    """
CREATE FUNCTION cms_inline(value jsonb, remaining integer, path uuid[], published boolean)
RETURNS json
LANGUAGE sql STABLE AS $$
  -- Most values hold no reference at all: those are returned as they are, without a walk.
  SELECT CASE
    WHEN value IS NULL THEN NULL
    WHEN remaining <= 0 OR strpos(value::text, '"_ref"') = 0 THEN value::json
    ELSE cms_inline_walk(value, remaining, path, published)
  END
$$
""",
)

NAMES = (
    "cms_inline(jsonb, integer, uuid[], boolean)",
    "cms_inline_walk(jsonb, integer, uuid[], boolean)",
    "cms_render(uuid, text, text, jsonb, boolean, uuid, timestamptz, timestamptz, timestamptz,"
    " text, text, integer, text, text, integer, uuid[], boolean)",
    "cms_read_datetime(text)",
    "cms_read_date(text)",
    "cms_valid_ymd(integer, integer, integer)",
    "cms_iso_timestamp(timestamptz)",
)


def upgrade() -> None:
    for statement in FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    for name in NAMES:
        op.execute(f"DROP FUNCTION {name}")
