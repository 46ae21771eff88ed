"""A bounded memo for per-line answers that keeps what recurs (pure: no dependencies).

News streams repeat lines: a story's re-scrapes and syndicated copies, a site's boilerplate. Repair and
clean remember their answer per line, but the copies of a story arrive far apart (on the re-scrape corpus
of ../shared/bench a story's next copy comes 2,073 documents later, ~5M characters of lines per worker),
and a memo that starts afresh when full forgets them just before they come back.

`RecentMemo` holds two generations: answers go into the current one; when it holds `max_chars`
characters of keys it becomes the previous one (the one before is dropped) and a new one starts. A
look-up that finds its key only in the previous generation moves it to the current one, so a line that
keeps recurring is never dropped, and the memo holds at most about twice `max_chars` characters.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentMemo(Generic[K, V]):
    """Answers per key, at most about 2 * `max_chars` characters of keys (the sizes the callers give)."""

    __slots__ = ("_current", "_previous", "_previous_chars", "chars", "max_chars")

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0  # characters of keys in the current generation
        self._previous_chars = 0
        self._current: dict[K, tuple[V, int]] = {}
        self._previous: dict[K, tuple[V, int]] = {}

    @property
    def held_chars(self) -> int:
        """Characters of keys held in both generations."""
        return self.chars + self._previous_chars

    def get(self, key: K) -> V | None:
        hit = self._current.get(key)
        if hit is None:
            hit = self._previous.pop(key, None)
            if hit is None:
                return None
            self._previous_chars -= hit[1]
            self._store(key, hit)
        return hit[0]

    def put(self, key: K, value: V, chars: int) -> None:
        """Remember `value` for `key`; `chars` is the key's size (what the bound counts)."""
        self._store(key, (value, chars))

    def _store(self, key: K, entry: tuple[V, int]) -> None:
        # (Callers store after a miss; a key stored again replaces its entry and its count.)
        old = self._current.pop(key, None)
        if old is not None:
            self.chars -= old[1]
        elif (old := self._previous.pop(key, None)) is not None:
            self._previous_chars -= old[1]
        if self.chars >= self.max_chars:
            self._previous, self._previous_chars = self._current, self.chars
            self._current = {}
            self.chars = 0
        self._current[key] = entry
        self.chars += entry[1]

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def __contains__(self, key: object) -> bool:
        return key in self._current or key in self._previous

    def clear(self) -> None:
        self._current, self._previous, self.chars, self._previous_chars = {}, {}, 0, 0
