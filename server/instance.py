"""(to be written)"""

from __future__ import annotations


class InstanceStore:
    pass
