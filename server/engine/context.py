"""A unit of work as the engine sees it (`Context`), and the checks every engine call shares.

`server.engine.local_api` opens contexts; the asset and schedule services and the compiled read path
take them, so this module sits below all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from server.access.capabilities import DOCUMENT_WRITES, missing
from server.db.pool import Tx
from server.errors import ForbiddenError, InvalidInputError
from server.model.reading import Perspective, check_perspective
from server.model.types import Registry, SchemaType


@dataclass(frozen=True)
class Context:
    """One unit of work: its transaction, its registry, and who is acting."""

    tx: Tx
    organization_id: uuid.UUID
    registry: Registry
    user_id: str | None = None
    # None means every capability (the system context).
    capabilities: frozenset[str] | None = None
    # API keys for public frontends may read published content only.
    published_only: bool = False
    # The sign-in session when a signed-in user acts; None for API keys and the system.
    session_id: str | None = None
    # The caller may act on instance-wide things (schema types, trusted documents).
    instance_admin: bool = False

    def require(self, capability: str) -> None:
        if self.capabilities is not None and capability not in self.capabilities:
            raise missing(capability)
        if self.published_only and capability in DOCUMENT_WRITES:
            raise ForbiddenError("not allowed: this key may read published content only")

    def perspective(self, requested: object) -> Perspective:
        perspective = check_perspective(requested)
        if perspective == "draft" and self.published_only:
            raise ForbiddenError("not allowed: this key may read the published perspective only")
        return perspective


def parse_id(value: object, path: str = "id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInputError(f"invalid id: {value!r} is not a UUID", path=path) from None


def document_type(registry: Registry, name: str) -> SchemaType:
    """The registered document type `name` (`INVALID_INPUT` for an unknown or object type)."""
    schema_type = registry.get(name)
    if schema_type is None or not schema_type.is_document:
        raise InvalidInputError(f"unknown document type '{name}'", path="type")
    return schema_type
