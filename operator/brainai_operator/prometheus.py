"""The advisor's Prometheus I/O: a few batched range queries per Prometheus, for every BrainAICluster.

Clusters are grouped by the Prometheus they use and the window they ask for; each group costs one
range query per metric however many clusters it holds (`promql.usage_queries`), and the answers
are split per cluster in Python. A Prometheus that cannot be reached or answers with an error turns
into an `Advice` that says so: it never raises into the controller.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from pydantic import ValidationError
from urllib3.util.retry import Retry

from brainai_operator import api
from brainai_operator.advisor import NOT_CONFIGURED, Advice
from brainai_operator.clock import rfc3339
from brainai_operator.durations import Window
from brainai_operator.promql import Key, Usage, split_usage, usage_queries
from brainai_operator.rightsizing import DEFAULT_RULES, Current, Rules, recommend
from brainai_operator.strategies import ConfigError, resolve

log = logging.getLogger(__name__)

UNREACHABLE = "PrometheusUnreachable"
QUERY_FAILED = "QueryFailed"
NO_DATA = "NoData"


class PrometheusError(Exception):
    """Prometheus could not answer; `reason` is the condition reason to report."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AdvisorSettings:
    prometheus_url: str | None = None
    window: str = "1h"
    interval: float = 300.0
    timeout: float = 10.0
    step: int | None = None  # seconds between points; default: window / 120
    rate: int | None = None  # rate() range in seconds; default: two steps, at least a minute


def connect(url: str, timeout: float = 10.0) -> PrometheusConnect:
    # One quick retry: the library's default (3, exponential) would hold a worker for seconds when
    # Prometheus is down, and the next pass comes soon anyway.
    retry = Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504], allowed_methods=None)
    return PrometheusConnect(url=url.rstrip("/"), retry=retry, timeout=timeout)


def fetch_usage(
    prom: PrometheusConnect, clusters: Sequence[Key], window: Window, end: float
) -> tuple[dict[Key, Usage], float, float]:
    """One range query per metric for all `clusters`; returns usage per cluster and the (start, end)."""
    end = math.floor(end / window.step) * window.step  # aligned, so points of separate passes line up
    start = end - window.seconds
    results: dict[str, list[dict[str, Any]]] = {}
    for metric, query in usage_queries(clusters, window).items():
        try:
            results[metric] = prom.custom_query_range(
                query,
                start_time=dt.datetime.fromtimestamp(start, dt.UTC),
                end_time=dt.datetime.fromtimestamp(end, dt.UTC),
                step=str(window.step),
            )
        except requests.RequestException as exc:
            raise PrometheusError(UNREACHABLE, f"cannot reach Prometheus at {prom.url}: {exc}") from exc
        except PrometheusApiClientException as exc:
            raise PrometheusError(QUERY_FAILED, f"Prometheus at {prom.url} refused a query: {exc}") from exc
    return split_usage(results, clusters, start, end, window.step), start, end


@dataclass(frozen=True)
class Target:
    key: Key
    url: str | None
    window: str
    current: Current


def targets(objs: Sequence[dict[str, Any]], settings: AdvisorSettings) -> list[Target]:
    """Each BrainAICluster with the Prometheus and window it uses, and its current settings.

    Clusters whose spec does not parse are left out: their reconcile already reports why.
    """
    found = []
    for obj in objs:
        meta = obj["metadata"]
        try:
            spec = api.BrainAIClusterSpec.model_validate(obj.get("spec") or {})
            current = Current.of(resolve(spec))
        except (ValidationError, ConfigError):
            continue
        monitoring = spec.monitoring
        url = (monitoring.prometheus_url if monitoring else None) or settings.prometheus_url
        window = (monitoring.window if monitoring else None) or settings.window
        found.append(Target((meta["namespace"], meta["name"]), url, window, current))
    return found


def advise(
    objs: Sequence[dict[str, Any]],
    settings: AdvisorSettings,
    now: dt.datetime,
    rules: Rules = DEFAULT_RULES,
    connector: Callable[[str, float], PrometheusConnect] = connect,
) -> dict[Key, Advice]:
    """Advice for every cluster in `objs`: one batch of queries per (Prometheus, window) group."""
    advice: dict[Key, Advice] = {}
    groups: dict[tuple[str, str], list[Target]] = defaultdict(list)
    for target in targets(objs, settings):
        if target.url is None:
            advice[target.key] = NOT_CONFIGURED
        else:
            groups[(target.url, target.window)].append(target)
    stamp = rfc3339(now)
    for (url, window_text), members in groups.items():
        window = Window.of(window_text, settings.step, settings.rate)
        keys = [t.key for t in members]
        try:
            with connector(url, settings.timeout) as prom:
                usage, _, _ = fetch_usage(prom, keys, window, now.timestamp())
        except PrometheusError as exc:
            log.warning("advisor: %s (%d clusters)", exc, len(keys))
            for key in keys:
                advice[key] = Advice(True, False, exc.reason, str(exc))
            continue
        for target in members:
            try:
                rec = recommend(usage[target.key], target.current, window, stamp, rules)
            except Exception as exc:  # one odd series must not cost every other cluster its advice
                log.exception("advisor: recommendation for %s/%s failed", *target.key)
                advice[target.key] = Advice(True, False, "AdvisorError", f"could not compute: {exc}")
                continue
            if rec is None:
                advice[target.key] = Advice(
                    True,
                    False,
                    NO_DATA,
                    f"no engine metrics for service {target.key[1]}-engine in namespace {target.key[0]} "
                    f"over the last {window.label} at {url} (is a ServiceMonitor scraping it?)",
                )
            else:
                advice[target.key] = Advice(
                    True, True, "Available", f"usage over the last {window.label} from {url}", rec
                )
    return advice
