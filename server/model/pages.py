"""`Page`: one page of a longer list, the one shape every paginated call returns.

Documents, assets, versions, schedules and back-references are all read a page at a time with
`limit` and `offset`; the page says what it holds, where it starts, and how long the whole list is
(`total`, None when the caller did not ask for it to be counted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    limit: int
    offset: int
    total: int | None
    has_next: bool

    @classmethod
    def counted(cls, items: Sequence[T], *, total: int, limit: int, offset: int) -> Page[T]:
        """A page of a list whose length was counted."""
        return cls(
            items=list(items),
            limit=limit,
            offset=offset,
            total=total,
            has_next=offset + len(items) < total,
        )

    def with_items(self, items: Sequence[U]) -> Page[U]:
        """The same page holding other items (the same rows in another form)."""
        return Page(
            items=list(items),
            limit=self.limit,
            offset=self.offset,
            total=self.total,
            has_next=self.has_next,
        )

    @property
    def page(self) -> int:
        """The page's number, from 1."""
        return self.offset // self.limit + 1

    @property
    def total_pages(self) -> int | None:
        return None if self.total is None else math.ceil(self.total / self.limit)

    @property
    def has_prev(self) -> bool:
        return self.offset > 0
