"""Small variant bodies kept in memory: content never changes, so an entry never goes stale.

Bounded by a byte budget, least recently used first out. Bodies above the size limit
are never kept; they stream from the object store.
"""

from __future__ import annotations

from collections import OrderedDict


def body_key(bucket: str, store_key: str) -> str:
    """The cache's key for an object's bytes."""
    return f"{bucket}/{store_key}"


class SmallBodyCache:
    def __init__(self, budget_bytes: int, max_body_bytes: int) -> None:
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._budget = budget_bytes
        self.max_body_bytes = min(max_body_bytes, budget_bytes)
        self.used_bytes = 0

    def get(self, key: str) -> bytes | None:
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
        return body

    def put(self, key: str, body: bytes) -> None:
        if len(body) > self.max_body_bytes or key in self._bodies:
            return
        self._bodies[key] = body
        self.used_bytes += len(body)
        while self.used_bytes > self._budget:
            _, evicted = self._bodies.popitem(last=False)
            self.used_bytes -= len(evicted)


# An original may take at most this share of its cache's budget, so that one huge image cannot
# push out every other (and a burst of first requests of one asset is what the cache is for).
_ORIGINAL_SHARE = 4


def originals_cache(budget_bytes: int) -> SmallBodyCache:
    """Recently rendered-from originals' encoded bytes, so that a burst of first requests of one
    asset's variants reads the original once. Store keys are never reused for other content, so an
    entry cannot go stale: a replaced original has a new key, and a deleted asset is no longer
    resolved to reach its old one.
    """
    return SmallBodyCache(budget_bytes, budget_bytes // _ORIGINAL_SHARE)
