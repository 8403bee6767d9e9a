"""Instance settings: one JSON object for the whole installation, and the first-admin claim.

Both live in `cms_instance_settings`: the settings in the row 'default', the claim in the row
'bootstrap-claim', whose insertion only one caller can ever win.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from server.db.pool import Tx
from server.errors import InvalidInputError

DEFAULT_SETTINGS: MappingProxyType[str, Any] = MappingProxyType({"allowUserOrgCreation": False})

# The type each known setting must have; unknown keys are kept as given.
_SETTING_TYPES: dict[str, type] = {"allowUserOrgCreation": bool}


def _check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(settings, dict) or not all(isinstance(key, str) for key in settings):
        raise InvalidInputError("settings must be an object", path="settings")
    for key, expected in _SETTING_TYPES.items():
        if key in settings and not isinstance(settings[key], expected):
            raise InvalidInputError(f"{key} must be a {expected.__name__}", path=f"settings.{key}")
    return settings


class InstanceStore:
    """Instance-wide settings (`cms_instance_settings`)."""

    async def get_instance_settings(self, tx: Tx) -> dict[str, Any]:
        """The settings, with the defaults filled in for keys never set."""
        stored = await tx.fetchval(
            "SELECT settings FROM cms_instance_settings WHERE id = 'default'"
        )
        return {**DEFAULT_SETTINGS, **(stored or {})}

    async def update_instance_settings(self, tx: Tx, *, settings: dict[str, Any]) -> dict[str, Any]:
        """Merge `settings` into the stored ones, key by key, and return the result with defaults.

        Raises:
            InvalidInputError: not an object, or a known setting with a value of the wrong type.
        """
        stored = await tx.fetchval(
            """INSERT INTO cms_instance_settings (id, settings) VALUES ('default', $1)
               ON CONFLICT (id) DO UPDATE
               SET settings = cms_instance_settings.settings || EXCLUDED.settings,
                   updated_at = now()
               RETURNING settings""",
            _check_settings(settings),
        )
        return {**DEFAULT_SETTINGS, **stored}

    async def try_claim_bootstrap(self, tx: Tx) -> bool:
        """Claim the one-time first-admin promotion. True for exactly one caller, ever."""
        return bool(
            await tx.fetchval(
                """INSERT INTO cms_instance_settings (id, settings)
                   VALUES ('bootstrap-claim', jsonb_build_object('claimedAt', now()))
                   ON CONFLICT (id) DO NOTHING RETURNING true"""
            )
        )
