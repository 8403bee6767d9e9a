"""(to be written)"""

from __future__ import annotations


class ProfileStore:
    pass
