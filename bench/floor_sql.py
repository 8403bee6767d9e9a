"""The floor's statements: one per request, building the whole JSON response in PostgreSQL.

Each returns, as text, exactly the `data` the API returns for the same scenario (the harness checks
that before it measures). Sorting and filtering use the same expressions as the API's compiler
(`cms_to_timestamptz`, `cms_to_numeric`), so both get the same plans and the same indexes; the
difference between the two is everything around the statement.

References follow the API's rules: a reference is inlined when its target is readable (same
organization, published) and not already on the path from the root, else it becomes a stub whose
content fields are null. `$1` is always the organization.
"""

from __future__ import annotations

_POST_FIELDS = ("title", "slug", "views", "rating", "tags", "publishedDate")
_MENTOR_LEVELS = 5


def _visible(alias: str) -> str:
    return (
        f"{alias}.organization_id = $1 AND {alias}.status = 'published'"
        f" AND {alias}.published_data IS NOT NULL"
    )


def _object(
    alias: str, names: tuple[str, ...], *extra: tuple[str, str], with_id: bool = False
) -> str:
    """`json_build_object` of `alias`'s id (if asked), published fields, then `extra` pairs."""
    pairs = [f"'id', {alias}.id"] if with_id else []
    pairs.extend(f"'{name}', {alias}.published_data->'{name}'" for name in names)
    pairs.extend(f"'{key}', {sql}" for key, sql in extra)
    return f"json_build_object({', '.join(pairs)})"


def _stub(*names: str) -> str:
    return "json_build_object(" + ", ".join(f"'{name}', NULL" for name in names) + ")"


def _ref_id(alias: str, field: str) -> str:
    return f"({alias}.published_data->'{field}'->>'_ref')::uuid"


def _inlined(present: str, target: str, resolved: str, stub: str) -> str:
    """A reference: null when absent, the stub when its target row was not joined, else resolved."""
    return (
        f"CASE WHEN {present} IS NULL THEN NULL"
        f" WHEN {target}.id IS NULL THEN {stub} ELSE {resolved} END"
    )


def _response(field: str, value: str) -> str:
    return f"json_build_object('data', json_build_object('{field}', {value}))::text"


def _post(alias: str, *extra: tuple[str, str]) -> str:
    return _object(alias, _POST_FIELDS, *extra, with_id=True)


def _list(field: str, item: str, order: str) -> str:
    return _response(field, f"coalesce(json_agg({item} ORDER BY {order}), '[]')")


_LATEST_POSTS = (
    "SELECT d.id, d.published_data, cms_to_timestamptz(d.published_data->>'publishedDate') AS k"
    f" FROM cms_documents d WHERE d.type = 'post' AND {_visible('d')}"
    " ORDER BY k DESC NULLS LAST, d.id LIMIT 20"
)
_BY_DATE = "p.k DESC NULLS LAST, p.id"


def _categories(*, with_parent: bool) -> str:
    """Post `p`'s categories as a JSON array in their stored order (a correlated subquery)."""
    joins = f" LEFT JOIN cms_documents c ON c.id = (e.ref->>'_ref')::uuid AND {_visible('c')}"
    if with_parent:
        parent = _inlined(
            "c.published_data->'parent'", "cp", _object("cp", ("title",)), _stub("title")
        )
        item = _inlined(
            "e.ref", "c", _object("c", ("title",), ("parent", parent)), _stub("title", "parent")
        )
        joins += (
            f" LEFT JOIN cms_documents cp ON cp.id = {_ref_id('c', 'parent')}"
            f" AND cp.id <> c.id AND {_visible('cp')}"
        )
    else:
        item = _inlined("e.ref", "c", _object("c", ("title",)), _stub("title"))
    return (
        "(SELECT CASE WHEN p.published_data->'categories' IS NULL THEN NULL"
        f" ELSE coalesce(json_agg({item} ORDER BY e.n), '[]') END"
        " FROM jsonb_array_elements(p.published_data->'categories') WITH ORDINALITY AS e(ref, n)"
        f"{joins})"
    )


Q1 = f"SELECT {_list('allPost', _post('p'), _BY_DATE)} FROM ({_LATEST_POSTS}) p"

_Q2_AUTHOR = _inlined(
    "p.published_data->'author'",
    "a",
    _object(
        "a",
        ("name",),
        (
            "mentor",
            _inlined("a.published_data->'mentor'", "m", _object("m", ("name",)), _stub("name")),
        ),
    ),
    _stub("name", "mentor"),
)
Q2 = (
    "SELECT "
    + _list(
        "allPost",
        _post("p", ("author", _Q2_AUTHOR), ("categories", _categories(with_parent=True))),
        _BY_DATE,
    )
    + f" FROM ({_LATEST_POSTS}) p"
    + f" LEFT JOIN cms_documents a ON a.id = {_ref_id('p', 'author')} AND {_visible('a')}"
    + f" LEFT JOIN cms_documents m ON m.id = {_ref_id('a', 'mentor')}"
    + f" AND m.id <> a.id AND {_visible('m')}"
)

# $2: the title pattern, $3: the views bound.
Q3 = (
    f"SELECT {_list('allPost', _post('p'), 'p.updated_at DESC, p.id')} FROM ("
    "SELECT d.id, d.published_data, d.updated_at FROM cms_documents d"
    f" WHERE d.type = 'post' AND {_visible('d')}"
    " AND d.published_data->>'title' ILIKE $2"
    " AND cms_to_numeric(d.published_data->'views') > $3"
    " ORDER BY d.updated_at DESC, d.id LIMIT 20) p"
)

# $2: the post id.
_Q4_AUTHOR = _inlined("p.published_data->'author'", "a", _object("a", ("name",)), _stub("name"))
Q4 = "SELECT " + _response(
    "post",
    f"(SELECT {_post('p', ('author', _Q4_AUTHOR), ('categories', _categories(with_parent=False)))}"
    f" FROM cms_documents p"
    f" LEFT JOIN cms_documents a ON a.id = {_ref_id('p', 'author')} AND {_visible('a')}"
    f" WHERE p.id = $2 AND p.type = 'post' AND {_visible('p')})",
)


def _mentor(level: int) -> str:
    """The mentor `level` (1-5) steps below the root author `m0`."""
    owner, target = f"m{level - 1}", f"m{level}"
    if level == _MENTOR_LEVELS:
        resolved, stub = _object(target, ("name",)), _stub("name")
    else:
        resolved = _object(target, ("name",), ("mentor", _mentor(level + 1)))
        stub = _stub("name", "mentor")
    return _inlined(f"{owner}.published_data->'mentor'", target, resolved, stub)


def _mentor_joins() -> str:
    joins = []
    for level in range(1, _MENTOR_LEVELS + 1):
        path = ", ".join(f"m{n}.id" for n in range(level))
        joins.append(
            f" LEFT JOIN cms_documents m{level}"
            f" ON m{level}.id = {_ref_id(f'm{level - 1}', 'mentor')}"
            f" AND m{level}.id NOT IN ({path}) AND {_visible(f'm{level}')}"
        )
    return "".join(joins)


Q5 = (
    "SELECT "
    + _list(
        "allAuthor",
        _object("m0", ("name",), ("mentor", _mentor(1)), with_id=True),
        "m0.updated_at DESC, m0.id",
    )
    + " FROM (SELECT d.id, d.published_data, d.updated_at FROM cms_documents d"
    f" WHERE d.type = 'author' AND {_visible('d')}"
    " ORDER BY d.updated_at DESC, d.id LIMIT 20) m0" + _mentor_joins()
)

_VERSION = """, version AS (
    INSERT INTO cms_document_versions
        (document_id, organization_id, version_number, event_type, data, created_by)
    SELECT doc.id, doc.organization_id,
        (SELECT coalesce(max(version_number), 0) + 1 FROM cms_document_versions
          WHERE document_id = $2), '{event}', doc.data, 'floor'
    FROM doc
)"""
_RESULT = "(SELECT json_build_object('id', id, 'revision', revision) FROM doc)"

# $2: the post id, $3: the JSON merged into the draft, $4: the expected revision.
W1_UPDATE = (
    """WITH doc AS (
    UPDATE cms_documents SET draft_data = draft_data || $3::jsonb,
        draft_hash = left(md5((draft_data || $3::jsonb)::text), 20),
        revision = revision + 1, updated_at = now(), updated_by = 'floor'
    WHERE id = $2 AND organization_id = $1 AND type = 'post' AND revision = $4
    RETURNING id, organization_id, revision, draft_data AS data
)"""
    + _VERSION.format(event="draft")
    + f" SELECT {_response('updatePost', _RESULT)}"
)

# $2: the post id.
W1_PUBLISH = (
    """WITH doc AS (
    UPDATE cms_documents SET status = 'published', published_data = draft_data,
        published_hash = draft_hash, published_at = now(), updated_at = now(),
        updated_by = 'floor'
    WHERE id = $2 AND organization_id = $1 AND type = 'post'
    RETURNING id, organization_id, revision, published_data AS data
)"""
    + _VERSION.format(event="publish")
    + f" SELECT {_response('publishPost', _RESULT)}"
)
