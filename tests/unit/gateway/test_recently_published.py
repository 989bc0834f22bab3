"""The review jobs publish what the read models do not show yet once per hold."""

from services.gateway.review.jobs import RecentlyPublished


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_published_key_is_not_fresh_again_until_its_hold_has_passed() -> None:
    clock = Clock()
    recent = RecentlyPublished(hold=300, clock=clock)
    assert recent.fresh(["a", "b"]) == ["a", "b"]
    recent.remember(["a"])
    clock.now += 299
    assert recent.fresh(["a", "b"]) == ["b"]
    clock.now += 1
    assert recent.fresh(["a", "b"]) == ["a", "b"]


def test_keys_are_forgotten_oldest_first_and_a_republished_key_counts_from_its_new_time() -> None:
    clock = Clock()
    recent = RecentlyPublished(hold=10, clock=clock)
    recent.remember(["old"])
    clock.now += 5
    recent.remember(["young"])
    clock.now += 6  # "old" is 11 s old, "young" 6 s
    assert recent.fresh(["old", "young"]) == ["old"]
    recent.remember(["old"])
    clock.now += 5  # "young" 11 s old, "old" 5 s since its second publish
    assert recent.fresh(["old", "young"]) == ["young"]
