"""Synthetic usage and baselines shared by the right-sizing and report tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.promql import Usage
from brainai_operator.quantities import MI
from brainai_operator.rightsizing import Current
from brainai_operator.strategies import resolve

BALANCED = Current.of(resolve(BrainAIClusterSpec()))  # 500m/1Gi requests, 1/2Gi limits, HPA 3-20 at 70%


def current(**changes: object) -> Current:
    fields = {**BALANCED.__dict__, **changes}
    return Current(**fields)  # type: ignore[arg-type]


def usage_factory(seed: int = 7) -> Callable[..., Usage]:
    """A `usage(...)` with its own noise stream, so one module's draws do not depend on another's."""
    rng = np.random.default_rng(seed)

    def usage(
        cpu_per_pod: float = 0.3,
        pods: int = 3,
        learn: float = 5.0,
        query: float = 5.0,
        memory: float = 600 * MI,
        steps: int = 120,
    ) -> Usage:
        noise = rng.normal(1.0, 0.05, size=(pods, steps)).clip(0.8, 1.2)
        return Usage(
            times=1_700_000_000 + 30.0 * np.arange(steps),
            cpu=cpu_per_pod * noise,
            memory=memory * noise,
            learn_rps=learn * noise[0],
            query_rps=query * noise[0],
            other_rps=np.zeros(steps),
            latency_p95=np.full(steps, 0.02),
            pods=[f"p{i}" for i in range(pods)],
        )

    return usage
