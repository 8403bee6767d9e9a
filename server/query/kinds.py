"""What a content field is to a reader: the shape the GraphQL type generator gives it.

`server/graphql/typegen.py` decides each field's GraphQL type and records its kind here; the
statement builder (`server/query/sql.py`) reads the same kinds, so the compiled path and the
resolver path cannot disagree about how a stored value is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.model.types import Registry


@dataclass(frozen=True, slots=True)
class Scalar:
    """`text` (string, text, slug, url), `boolean`, `date`, `datetime`, `int` or `float`."""

    name: str


@dataclass(frozen=True, slots=True)
class Json:
    """Kept as JSON (rich text, mixed arrays): shown as stored, with references inlined.

    `references` is the field's node of the reference map as JSON text (`server/model/reference_paths.py`:
    the types its references may lead to), or None when the schema declares none below it.
    """

    references: str | None = None


@dataclass(frozen=True, slots=True)
class Asset:
    """An image or file value (`Image` / `FileAsset`)."""

    name: str


@dataclass(frozen=True, slots=True)
class Object:
    """An inline or named object: the generated class `class_name`."""

    class_name: str


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference to a document of one of `targets` (schema type names, in declared order)."""

    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListOf:
    """An array whose items all have one kind."""

    item: Kind


@dataclass(frozen=True, slots=True)
class ByItemType:
    """An array of several object kinds: each item's `_type` picks its kind (unknown: null)."""

    members: tuple[tuple[str, Kind], ...]


Kind = Scalar | Json | Asset | Object | Reference | ListOf | ByItemType


class GeneratedKinds(Protocol):
    """What the planner reads of the generated GraphQL types (`server.graphql.typegen` makes them):
    the registry they were built from, and each generated class's content fields by kind."""

    @property
    def registry(self) -> Registry: ...

    @property
    def class_fields(self) -> Mapping[str, Mapping[str, Kind]]: ...
