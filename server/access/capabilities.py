"""Capabilities: what a role lets its members do, and the built-in roles every organization gets.

A capability is a `resource.action` string. Roles hold sets of them; a check is a frozenset lookup.
`schema.manage` is an instance capability: it belongs to instance admins (profile role super_admin
or admin) and is never granted through an organization role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from server.errors import ForbiddenError, InvalidInputError

# In their canonical order, which is also the order roles store them in.
CAPABILITIES: tuple[str, ...] = (
    "document.read",
    "document.create",
    "document.update",
    "document.delete",
    "document.publish",
    "document.unpublish",
    # Scheduling publishes and unpublishes, and cancelling them (`server/content/schedules.py`).
    "document.schedule",
    "asset.read",
    "asset.upload",
    "asset.delete",
    "member.invite",
    "member.remove",
    "member.changeRole",
    "apiKey.manage",
    "role.manage",
    "org.settings",
    "webhook.manage",
    "schema.manage",
)
ALL_CAPABILITIES = frozenset(CAPABILITIES)
INSTANCE_CAPABILITIES = frozenset({"schema.manage"})
ORGANIZATION_CAPABILITIES = ALL_CAPABILITIES - INSTANCE_CAPABILITIES

_ORDER = {capability: index for index, capability in enumerate(CAPABILITIES)}
_DOCUMENT = frozenset(c for c in CAPABILITIES if c.startswith("document."))
# A published-only key reads published content and nothing else of the documents: every document
# write answers with the draft, so these never take effect for it (`auth.principal_from_facts`).
DOCUMENT_WRITES = _DOCUMENT - {"document.read"}
_ASSET = frozenset(c for c in CAPABILITIES if c.startswith("asset."))

BUILT_IN_ROLES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "owner": ORGANIZATION_CAPABILITIES,
        "admin": ORGANIZATION_CAPABILITIES,
        "editor": _DOCUMENT | _ASSET,
        "viewer": frozenset({"document.read", "asset.read"}),
    }
)


def normalize_capabilities(capabilities: Iterable[str]) -> frozenset[str]:
    """Validate capabilities and add the read capability that each write implies.

    Args:
        capabilities: capability strings, in any order, duplicates allowed.

    Returns:
        The set, with `document.read` added for any `document.*` and `asset.read` for any `asset.*`.

    Raises:
        InvalidInputError: a value is not a known capability string (the message names it).
    """
    if isinstance(capabilities, str):
        raise InvalidInputError("capabilities must be a list of strings", path="capabilities")
    result: set[str] = set()
    for capability in capabilities:
        if not isinstance(capability, str) or capability not in ALL_CAPABILITIES:
            raise InvalidInputError(f"unknown capability: {capability!r}", path="capabilities")
        result.add(capability)
    if result & _DOCUMENT:
        result.add("document.read")
    if result & _ASSET:
        result.add("asset.read")
    return frozenset(result)


def ordered(capabilities: Iterable[str]) -> list[str]:
    """The capabilities in canonical order: a stable form for storage and output."""
    return sorted(capabilities, key=_ORDER.__getitem__)


def has_capability(granted: frozenset[str], capability: str) -> bool:
    """Whether `granted` includes `capability`.

    Raises:
        ValueError: `capability` is not a known capability: a programming error (a typo in a check
            would otherwise deny silently).
    """
    if capability in granted:
        return True
    if capability not in ALL_CAPABILITIES:
        raise ValueError(f"unknown capability: {capability!r}")
    return False


def missing(capability: str) -> ForbiddenError:
    """The refusal of an action that needs `capability`: one message wherever it is checked."""
    return ForbiddenError(f"not allowed: this requires the '{capability}' capability")
