"""`UNSET`: "leave this value alone", as opposed to None, "clear it", in partial updates."""

from __future__ import annotations

import enum
from typing import Final


class Unset(enum.Enum):
    """The type of `UNSET`."""

    UNSET = enum.auto()


UNSET: Final = Unset.UNSET
