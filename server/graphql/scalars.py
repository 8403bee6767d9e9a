"""The JSON scalar, typed as `Any` for mypy (it carries any JSON value)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    JSON = Any
else:
    from strawberry.scalars import JSON

__all__ = ["JSON"]
