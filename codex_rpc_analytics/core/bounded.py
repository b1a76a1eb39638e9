"""A dict with a capacity that evicts oldest-first and counts what it evicted.

Every per-connection map in the core is one of these: a client may never answer a server
request, a server may die mid-request, a turn may never complete. The reference keeps such
entries forever (docs/analytics-events.md §9); we keep at most ``capacity`` and say how many
we let go.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    __slots__ = ("_items", "capacity", "evicted")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._items: dict[K, V] = {}
        self.capacity = capacity
        self.evicted = 0

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Insert or replace (a replaced key becomes the newest); return what was evicted."""
        items = self._items
        if key in items:
            del items[key]
        items[key] = value
        if len(items) <= self.capacity:
            return None
        oldest = next(iter(items))
        self.evicted += 1
        return oldest, items.pop(oldest)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def drain(self) -> list[tuple[K, V]]:
        """Remove and return everything, oldest first."""
        items = list(self._items.items())
        self._items.clear()
        return items

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)
