"""What a read may ask for: its perspective, how many reference levels it resolves, and its page.

The GraphQL fields, the compiled read path and the local API all check their arguments here and fall
back to the same defaults.
"""

from __future__ import annotations

from typing import Literal

from server.errors import InvalidInputError

Perspective = Literal["published", "draft"]
PERSPECTIVES: tuple[Perspective, ...] = ("published", "draft")
MAX_DEPTH = 5  # reference levels a read may resolve
# What a read gets when it does not say: the GraphQL fields and the local API share these.
DEFAULT_DEPTH = 2
DEFAULT_PERSPECTIVE: Perspective = "published"
DEFAULT_LIMIT = 50


def check_perspective(value: object) -> Perspective:
    if value == "published":
        return "published"
    if value == "draft":
        return "draft"
    raise InvalidInputError(
        f"perspective must be 'published' or 'draft' (got {value!r})", path="perspective"
    )


def check_depth(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DEPTH:
        raise InvalidInputError(f"depth must be an integer from 0 to {MAX_DEPTH}", path="depth")
    return value


def check_page(limit: object, offset: object, *, max_limit: int) -> tuple[int, int]:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise InvalidInputError(f"limit must be an integer from 1 to {max_limit}", path="limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError("offset must be a non-negative integer", path="offset")
    return limit, offset
