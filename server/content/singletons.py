"""Singleton document types: one document per organization, at an id derived from both.

The id is a name-based UUID (RFC 4122 version 3) of `<organization>:<type>`; migration 0012 defines
`cms_singleton_id(org, type)`, the same function in SQL, for the compiled read path. A singleton
never saved reads as its empty document (`empty_row`): the id it will be saved under, no content,
revision 0, no timestamps. Reading never creates it; the first write does.
"""

from __future__ import annotations

import uuid

from server.content.documents import DocumentRow

NAMESPACE = uuid.UUID("6f4d2c3b-7a51-4e62-9b1d-5c1e0a5e7c11")


def singleton_id(organization_id: uuid.UUID, type_name: str) -> uuid.UUID:
    """The id of the singleton of `type_name` in the organization (`cms_singleton_id` in SQL)."""
    return uuid.uuid3(NAMESPACE, f"{organization_id}:{type_name}")


def empty_row(organization_id: uuid.UUID, type_name: str) -> DocumentRow:
    """The singleton as it reads before its first save, in every perspective."""
    return DocumentRow(
        id=singleton_id(organization_id, type_name),
        organization_id=organization_id,
        type=type_name,
        status="draft",
        draft_data={},
        published_data=None,
        published_hash=None,
        draft_hash=None,
        revision=0,
        created_by=None,
        updated_by=None,
        published_at=None,
        created_at=None,
        updated_at=None,
    )
