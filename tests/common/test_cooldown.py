from __future__ import annotations

import pytest

from brainai_common.cooldown import Cooldown


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_doubles_up_to_the_cap_and_resets() -> None:
    clock = Clock()
    c = Cooldown(1.0, 5.0, jitter=0.0, clock=clock)
    assert [c.fail() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert c.cooling and c.remaining == 5.0
    clock.now += 3.5
    assert c.remaining == 1.5
    clock.now += 1.5
    assert not c.cooling and c.remaining == 0.0
    c.reset()
    assert c.fail() == 1.0


def test_jitter_shortens_within_its_fraction_and_never_exceeds_the_cap() -> None:
    low = Cooldown(2.0, 8.0, jitter=0.25, rng=lambda: 0.999999)
    high = Cooldown(2.0, 8.0, jitter=0.25, rng=lambda: 0.0)
    for failures in range(1, 8):
        full = min(2.0 * 2 ** (failures - 1), 8.0)
        assert full * 0.75 <= low.delay(failures) < high.delay(failures) == full


def test_replicas_failing_together_spread_out() -> None:
    delays = {round(Cooldown(1.0, 30.0).delay(3), 6) for _ in range(50)}
    assert len(delays) > 40 and max(delays) <= 4.0 and min(delays) >= 3.2


def test_cooling_only_after_a_failure() -> None:
    c = Cooldown(1.0, 2.0)
    assert not c.cooling and c.remaining == 0.0


@pytest.mark.parametrize("args", [(0.0, 1.0, 0.1), (2.0, 1.0, 0.1), (1.0, 2.0, 1.0), (1.0, 2.0, -0.1)])
def test_rejects_nonsense(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError):
        Cooldown(*args)
