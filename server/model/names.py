"""Names of schema types and fields: what is allowed, and how they appear in the GraphQL API.

Type names may contain hyphens (`site-settings`), which GraphQL identifiers may not, so the API derives
its names with `to_pascal_case` (types: `SiteSettings`) and `to_camel_case` (query fields:
`siteSettings`, `allPost`).
"""

from __future__ import annotations

import re

TYPE_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
FIELD_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 100

_SEPARATORS = re.compile(r"[-_\s]+")


def to_pascal_case(name: str) -> str:
    """`site-settings` -> `SiteSettings`, `seo_meta` -> `SeoMeta`, `siteSettings` -> `SiteSettings`.

    Each part keeps its inner capitals, so camelCase names survive unchanged apart from the first letter.
    """
    return "".join(part[:1].upper() + part[1:] for part in _SEPARATORS.split(name) if part)


def to_camel_case(name: str) -> str:
    """`site-settings` -> `siteSettings`, `SiteSettings` -> `siteSettings`, `cover_image` -> `coverImage`."""
    pascal = to_pascal_case(name)
    return pascal[:1].lower() + pascal[1:]


def is_type_name(name: str) -> bool:
    """Letters, digits, `_` and `-`, starting with a letter, at most 100 characters."""
    return len(name) <= MAX_NAME_LENGTH and TYPE_NAME_PATTERN.fullmatch(name) is not None


def is_field_name(name: str) -> bool:
    """An identifier (`^[A-Za-z_][A-Za-z0-9_]*$`), not starting with `__`, at most 100 characters."""
    return (
        len(name) <= MAX_NAME_LENGTH
        and FIELD_NAME_PATTERN.fullmatch(name) is not None
        and not name.startswith("__")
    )


def graphql_name(schema_type_name: str) -> str:
    """The GraphQL name of a schema type (`site-settings` -> `SiteSettings`)."""
    return to_pascal_case(schema_type_name)


# Content fields live under prefixed Python attributes of the generated classes, so no field name
# (`from`, `self`, ...) can clash with Python or with the fixed attributes; GraphQL sees the field's
# own name.
ATTRIBUTE_PREFIX = "f_"


def attribute(field_name: str) -> str:
    return ATTRIBUTE_PREFIX + field_name


def field_name_of(attr: str) -> str | None:
    return attr[len(ATTRIBUTE_PREFIX) :] if attr.startswith(ATTRIBUTE_PREFIX) else None
