"""The advisor's Prometheus I/O: a few batched range queries per Prometheus, for every BrainAICluster.

Clusters are grouped by the Prometheus they use and the window they ask for; each group costs one
range query per metric however many clusters it holds (`promql.usage_queries`), and the answers
are split per cluster in Python. A Prometheus that cannot be reached or answers with an error turns
into an `Advice` that says so: it never raises into the controller.

Failures are reported as the Prometheus URL and a short reason ("connection refused", "HTTP 400:
parse error ..."): the client libraries' own messages carry the whole URL-encoded query, which
goes to the debug log only.
"""

from __future__ import annotations

import ast
import datetime as dt
import http
import json
import logging
import math
import socket
import ssl
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from pydantic import ValidationError
from urllib3.util.retry import Retry

from brainai_operator import api
from brainai_operator.advisor import NOT_CONFIGURED, Advice
from brainai_operator.clock import rfc3339
from brainai_operator.durations import MIN_EVIDENCE_SECONDS, Window
from brainai_operator.promql import Key, Usage, split_usage, usage_queries
from brainai_operator.rightsizing import DEFAULT_RULES, Current, Rules, recommend, shortfall
from brainai_operator.strategies import ConfigError, resolve

log = logging.getLogger(__name__)

UNREACHABLE = "PrometheusUnreachable"
QUERY_FAILED = "QueryFailed"
NO_DATA = "NoData"
INSUFFICIENT_DATA = "InsufficientData"
BAD_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


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
    min_evidence: int = MIN_EVIDENCE_SECONDS  # seconds of usage below which nothing is recommended


def display_url(url: str) -> str:
    """scheme://host[:port][/path] without credentials or a query: what messages may show."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return url  # not a URL it can strip anything from
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps: requests and urllib3 nest the root cause in args and `reason`."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        found = stack.pop()
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        for inner in (found.__cause__, found.__context__, getattr(found, "reason", None), *found.args):
            if isinstance(inner, BaseException):
                stack.append(inner)


def connection_failure(exc: BaseException) -> str:
    """A short reason a connection failed ("connection refused", "timed out"), from the root cause."""
    causes = list(_causes(exc))

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(c, kinds) for c in causes)

    if has(ConnectionRefusedError):
        return "connection refused"
    if has(socket.gaierror) or any(type(c).__name__ == "NameResolutionError" for c in causes):
        return "host name does not resolve"
    if has(requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if has(requests.exceptions.Timeout, TimeoutError):
        return "timed out waiting for an answer"
    if has(ssl.SSLError, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if has(ConnectionResetError):
        return "connection reset"
    if has(*BAD_URL):
        return "not a valid http(s) URL"
    for cause in causes:
        if type(cause).__name__ == "ResponseError" and cause.args:  # urllib3: too many 5xx answers
            return str(cause.args[0])
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
    return type(exc).__name__


def http_failure(exc: PrometheusApiClientException) -> str:
    """The status and Prometheus's own error text, from the client's `HTTP Status Code N (b'...')`:
    e.g. `HTTP 400 Bad Request: invalid parameter "query": ...`."""
    text = str(exc)
    head, _, body = text.partition(" (")
    code = head.rsplit(" ", 1)[-1]
    if not code.isdigit():
        return text[:200]
    try:
        phrase = http.HTTPStatus(int(code)).phrase
    except ValueError:
        phrase = ""
    detail = ""
    try:
        raw = ast.literal_eval(body[:-1]) if body.endswith(")") else b""
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except (ValueError, SyntaxError):
        content = ""
    try:
        answer = json.loads(content)
        detail = str(answer.get("error", "")) if isinstance(answer, dict) else ""
    except ValueError:
        detail = "" if content.lstrip().startswith("<") else content  # an HTML error page says nothing
    detail = " ".join(detail.split())
    if detail.lower() == phrase.lower():
        detail = ""
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return " ".join(p for p in (f"HTTP {code}", phrase) if p) + (f": {detail}" if detail else "")


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
    where = display_url(prom.url)
    for metric, query in usage_queries(clusters, window).items():
        try:
            results[metric] = prom.custom_query_range(
                query,
                start_time=dt.datetime.fromtimestamp(start, dt.UTC),
                end_time=dt.datetime.fromtimestamp(end, dt.UTC),
                step=str(window.step),
            )
        except (requests.JSONDecodeError, KeyError, TypeError) as exc:  # 200, but not the Prometheus API
            log.debug("the %s query to %s: %r", metric, where, exc, exc_info=True)
            raise PrometheusError(
                QUERY_FAILED, f"{where} does not answer like the Prometheus HTTP API (is the URL right?)"
            ) from exc
        except requests.RequestException as exc:
            log.debug("the %s query to %s: %s", metric, where, exc, exc_info=True)
            message = f"Prometheus at {where} is unreachable ({connection_failure(exc)})"
            raise PrometheusError(UNREACHABLE, message) from exc
        except PrometheusApiClientException as exc:
            log.debug("the %s query to %s: %s", metric, where, exc, exc_info=True)
            message = f"Prometheus at {where} refused the {metric} query ({http_failure(exc)})"
            raise PrometheusError(QUERY_FAILED, message) from exc
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
            found = usage[target.key]
            no_data = Advice(
                True,
                False,
                NO_DATA,
                f"no engine metrics for service {target.key[1]}-engine in namespace {target.key[0]} "
                f"over the last {window.label} at {display_url(url)} (is a ServiceMonitor scraping it?)",
            )
            if found.samples == 0:
                advice[target.key] = no_data
                continue
            # Thin evidence yields no recommendation at all, so neither status nor autopilot sees one.
            thin = shortfall(found, window, settings.min_evidence, rules)
            if thin is not None:
                message = thin.message(target.key, window)
                log.info("advisor: %s; no recommendation, autopilot keeps what it applied", message)
                advice[target.key] = Advice(True, False, INSUFFICIENT_DATA, message)
                continue
            try:
                rec = recommend(found, target.current, window, stamp, rules)
            except Exception as exc:  # one odd series must not cost every other cluster its advice
                log.exception("advisor: recommendation for %s/%s failed", *target.key)
                advice[target.key] = Advice(True, False, "AdvisorError", f"could not compute: {exc}")
                continue
            if rec is None:
                advice[target.key] = no_data
            else:
                advice[target.key] = Advice(
                    True,
                    True,
                    "Available",
                    f"usage over the last {window.label} from {display_url(url)}",
                    rec,
                )
    return advice
