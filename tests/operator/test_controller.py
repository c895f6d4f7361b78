"""The work queue's retry backoff: exponential, capped, and jittered so failed clusters spread out."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, cast

import pytest

from brainai_operator import controller as controller_module
from brainai_operator.advisor import NOT_CONFIGURED, Advice
from brainai_operator.client import Kube
from brainai_operator.controller import Controller, Key
from brainai_operator.prometheus import AdvisorSettings

KEY = ("prod", "a")


def failing_reconcile(*_: Any, **__: Any) -> str | None:
    raise RuntimeError("API server unavailable")


def retry_delays(ctl: Controller, failures: int, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delay each of `failures` consecutive failed reconciles schedules its retry after."""
    monkeypatch.setattr(controller_module, "reconcile_cluster", failing_reconcile)
    delays: list[float] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()

        def call_later(delay: float, callback: Callable[..., object], *args: object) -> None:
            delays.append(delay)

        monkeypatch.setattr(loop, "call_later", call_later)
        for _ in range(failures):
            await ctl._reconcile(KEY)

    asyncio.run(run())
    return delays


def controller(rng: Callable[[], float], max_backoff: float = 60.0) -> Controller:
    # reconcile_cluster is replaced in every test, so the client is never used.
    return Controller(cast(Kube, object()), max_backoff=max_backoff, rng=rng)


def test_without_jitter_the_delay_doubles_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    delays = retry_delays(controller(rng=lambda: 0.0), 7, monkeypatch)
    assert delays == [2, 4, 8, 16, 32, 60, 60]


def test_jitter_shortens_each_delay_by_at_most_a_fifth(monkeypatch: pytest.MonkeyPatch) -> None:
    delays = retry_delays(controller(rng=lambda: 1.0), 7, monkeypatch)
    assert delays == pytest.approx([1.6, 3.2, 6.4, 12.8, 25.6, 48.0, 48.0])


def test_default_jitter_stays_within_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    delays = retry_delays(controller(rng=random.Random(3).random), 40, monkeypatch)
    full = [min(2.0**n, 60.0) for n in range(1, 41)]
    assert all(0.8 * f <= d <= f for d, f in zip(delays, full, strict=True))
    assert len(set(delays[-30:])) > 1  # capped retries still spread out
    assert max(delays) <= 60.0


def test_a_short_cap_applies_from_the_first_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert retry_delays(controller(rng=lambda: 0.0, max_backoff=0.5), 3, monkeypatch) == [0.5, 0.5, 0.5]


def test_success_resets_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    ctl = controller(rng=lambda: 0.0)
    assert retry_delays(ctl, 3, monkeypatch) == [2, 4, 8]
    monkeypatch.setattr(controller_module, "reconcile_cluster", lambda *_, **__: "Ready")
    asyncio.run(ctl._reconcile(KEY))
    assert retry_delays(ctl, 1, monkeypatch) == [2]


def test_events_wait_for_the_scheduled_retry_but_a_new_generation_does_not() -> None:
    ctl = Controller(cast(Kube, None))

    async def run() -> None:
        ctl.retry_at[KEY] = controller_module.time.monotonic() + 30
        ctl.failed_generation[KEY] = 4
        ctl.enqueue(*KEY)  # a child changed, or our own status write came back
        ctl.enqueue(*KEY, generation=4)
        assert ctl.queue.qsize() == 0
        ctl.enqueue(*KEY, generation=5)  # someone changed the spec: try it now
        assert ctl.queue.qsize() == 1
        ctl.pending.clear()
        ctl._retry(KEY)  # the retry the failure scheduled
        assert ctl.queue.qsize() == 2

    asyncio.run(run())


def test_a_permanently_failing_cluster_keeps_one_retry_whatever_else_queues_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Changes and resyncs arriving all the time merge with the one scheduled retry, so failed passes
    stay bounded by the backoff (here capped at 0.2 s) instead of growing with every trigger."""
    passes: list[float] = []

    def failing(*_: Any, **__: Any) -> str | None:
        passes.append(controller_module.time.monotonic())
        raise RuntimeError("refused")

    monkeypatch.setattr(controller_module, "reconcile_cluster", failing)
    ctl = Controller(cast(Kube, object()), max_backoff=0.2, rng=lambda: 0.0, resync_seconds=3600)

    elapsed = 0.0

    async def run() -> None:
        nonlocal elapsed
        started = controller_module.time.monotonic()
        workers = asyncio.create_task(ctl.run())
        for _ in range(200):  # 2 s (more on a loaded machine) of a change or a resync every 10 ms
            ctl.enqueue(*KEY, reason="resync")
            await asyncio.sleep(0.01)
            assert len([t for t in ctl.retry_timers.values() if not t.cancelled()]) <= 1
        elapsed = controller_module.time.monotonic() - started
        workers.cancel()

    asyncio.run(run())
    # one pass, then at most one per 0.2 s backoff, each followed by a merged trigger at most
    assert 5 <= len(passes) <= elapsed / 0.2 + 2


def advised(
    ctl: Controller, monkeypatch: pytest.MonkeyPatch, status: dict[str, Any] | None, advice: Advice
) -> bool:
    """Whether one advisor pass that gives `advice` queues the cluster whose status is `status`."""
    obj = {"metadata": {"namespace": KEY[0], "name": KEY[1]}, "status": status}

    async def listed() -> list[dict[str, Any]]:
        return [obj]

    monkeypatch.setattr(ctl, "_list_clusters", listed)
    monkeypatch.setattr(controller_module, "advise", lambda *_: {KEY: advice})
    ctl.pending.clear()
    asyncio.run(ctl.advise_once())
    return KEY in ctl.pending


def test_the_advisor_queues_only_clusters_whose_status_it_would_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctl = Controller(cast(Kube, object()), advisor=AdvisorSettings())
    no_data = Advice(True, False, "NoData", "no engine metrics")
    # No Prometheus for a cluster whose status shows no metrics: a first advisor pass changes nothing.
    assert not advised(ctl, monkeypatch, {"phase": "Ready"}, NOT_CONFIGURED)
    assert not advised(ctl, monkeypatch, None, NOT_CONFIGURED)
    assert advised(ctl, monkeypatch, {"phase": "Ready"}, no_data)
    shown = {
        "conditions": [
            {
                "type": "MetricsAvailable",
                "status": "False",
                "reason": "NoData",
                "message": "no engine metrics",
            }
        ]
    }
    assert not advised(ctl, monkeypatch, shown, no_data)  # status already says so
    assert advised(ctl, monkeypatch, shown, NOT_CONFIGURED)  # the condition goes away
    assert advised(ctl, monkeypatch, shown, Advice(True, False, "NoData", "another message"))


def test_a_change_runs_before_a_fleet_of_queued_resyncs_and_each_cluster_runs_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[Key] = []

    def record(_kube: Kube, namespace: str, name: str, *_: Any, **__: Any) -> str:
        ran.append((namespace, name))
        return "Ready"

    monkeypatch.setattr(controller_module, "reconcile_cluster", record)
    ctl = Controller(cast(Kube, object()), workers=1, resync_seconds=3600)
    for i in range(1000):
        ctl.enqueue("fleet", f"c{i}", reason="resync")
    ctl.enqueue("fleet", "c500")  # one of them changed: it moves to the front
    ctl.enqueue("fleet", "c999", reason="resync")  # a second resync merges with the first

    async def run() -> None:
        workers = asyncio.create_task(ctl.run())
        for _ in range(3000):
            if len(ran) >= 1000 and not ctl.pending:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # a stale entry left behind would run now
        workers.cancel()

    asyncio.run(run())
    assert ran[0] == ("fleet", "c500")
    assert len(ran) == 1000 and len(set(ran)) == 1000
