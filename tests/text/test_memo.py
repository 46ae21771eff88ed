"""RecentMemo: the bounded per-line memo of repair and clean (text/memo.py)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from newsetl.text.memo import RecentMemo


def test_a_key_that_keeps_recurring_survives_any_number_of_generations() -> None:
    memo: RecentMemo[str, int] = RecentMemo(max_chars=100)  # generations of 10 lines
    memo.put("boilerplate", 1, 11)
    for n in range(1000):  # 1,000 other lines pass through, ~100 generations
        memo.put(f"line {n}", n, 10)
        if n % 3 == 0:
            assert memo.get("boilerplate") == 1
    assert memo.get("boilerplate") == 1
    assert memo.get("line 0") is None  # a line seen once is gone after two generations
    assert memo.held_chars <= 2 * 100 + 11


def test_a_forgotten_key_is_a_miss_not_a_wrong_answer() -> None:
    memo: RecentMemo[str, str] = RecentMemo(max_chars=4)
    memo.put("a", "A", 4)
    memo.put("b", "B", 4)  # "a" is now in the previous generation
    assert "a" in memo and memo.get("a") == "A"  # found there, moved to the current one
    memo.put("c", "C", 4)
    memo.put("d", "D", 4)
    assert memo.get("b") is None and len(memo) <= 2
    memo.clear()
    assert len(memo) == 0 and memo.held_chars == 0


@given(st.lists(st.tuples(st.sampled_from("abcdefghij"), st.booleans()), max_size=200),
       st.integers(min_value=1, max_value=12))
def test_answers_are_the_last_stored_and_the_bound_holds(ops: list[tuple[str, bool]], bound: int) -> None:
    # Against a plain dict of everything stored: the memo answers what was stored last for a key, or
    # nothing; and it never holds more than two generations' worth of characters.
    memo: RecentMemo[str, int] = RecentMemo(max_chars=bound)
    truth: dict[str, int] = {}
    for n, (key, store) in enumerate(ops):
        if store:
            memo.put(key, n, 3)
            truth[key] = n
            assert memo.get(key) == n  # what was just stored is always there
        else:
            got = memo.get(key)
            assert got is None or got == truth[key]
        assert memo.held_chars <= 2 * bound + 3 + 3
        assert memo.held_chars == 3 * len(memo)
