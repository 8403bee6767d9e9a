"""Content-rule patterns (`regex` on string fields), compiled by RE2.

Python's `re` backtracks: a pattern as plain as the example model's email rule takes time
polynomial in the input (and nested quantifiers exponential), and it runs on the event loop, so
one crafted string stalls the whole process. RE2 (`google-re2`) matches in time linear in the
input, whatever the pattern, at the price of the features that need backtracking: backreferences
and lookaround. A pattern RE2 cannot compile is refused when its type is registered.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

_OPTIONS = re2.Options()
# Compile errors become InvalidInputError messages; RE2 need not also write them to stderr.
_OPTIONS.log_errors = False


class PatternError(ValueError):
    """RE2 cannot compile the pattern; the message says why."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (RE2 syntax: no backreferences, lookahead or lookbehind).

    Raises:
        PatternError: the pattern is not valid RE2 syntax.
    """
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(f"{reason} (RE2 syntax: no backreferences or lookaround)") from None


def fullmatch(pattern: str, value: str) -> bool:
    """Whether the whole of `value` matches `pattern`, in time linear in `len(value)`."""
    return compile_pattern(pattern).fullmatch(value) is not None
