"""Console entry point `brain-ai-operator`: `run` the controller, or print the `crd`."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from brainai_operator import __version__


def log_level(name: str) -> int | None:
    """The logging level called `name`, or None: LOG_LEVEL may hold anything (argparse's choices do
    not check defaults)."""
    number = logging.getLevelName(name.upper())
    return number if isinstance(number, int) else None


def _run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    from brainai_operator import handlers
    from brainai_operator.client import Kube
    from brainai_operator.leader import LeaderElector, standby_liveness
    from brainai_operator.prometheus import AdvisorSettings
    from brainai_operator.strategies import OperatorDefaults

    level = log_level(args.log_level)
    if level is None:
        sys.stderr.write(f"error: log level {args.log_level!r}: use debug, info, warning or error\n")
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kubernetes", "kopf.objects", "kopf.activities"):  # one line per watch event otherwise
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    start_http_server(args.metrics_port)
    elector = None
    if args.leader_elect:
        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        elector = LeaderElector(Kube(), args.lease_namespace, args.lease_name, identity)
        with standby_liveness(args.health_port):
            elector.acquire()
    handlers.OPTIONS.update(
        workers=args.workers,
        resync_seconds=args.resync_seconds,
        max_backoff=args.max_backoff,
        namespaces=args.namespace or None,
        advisor=AdvisorSettings(
            prometheus_url=args.prometheus_url or None,
            window=args.advisor_window,
            interval=args.advisor_interval,
        ),
        defaults=OperatorDefaults(postgres_image=args.postgres_image, redis_image=args.redis_image),
    )
    kopf.run(
        standalone=True,  # one active replica is the leader lease's job, not kopf peering's
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz",
    )
    if elector:
        elector.release()
    return 0


def _duration(text: str) -> str:
    from brainai_operator.durations import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# `recommend` exit statuses; --help lists them (_recommend_epilog).
EXIT_INTERNAL = 1
EXIT_USAGE = 2  # argparse's own status for bad arguments, reused for bad input and configuration
EXIT_UNREACHABLE = 3
EXIT_NO_DATA = 4
EXIT_INSUFFICIENT = 5


def _recommend_epilog() -> str:
    from brainai_operator.durations import MIN_EVIDENCE_SECONDS, format_duration

    return f"""\
evidence: no advice from less than --min-evidence of engine usage (default \
{format_duration(MIN_EVIDENCE_SECONDS)}), counted as the
steps in the window where an engine pod reported CPU. A window of a few minutes (or a cluster only
minutes old) measures start-up, not the workload; the default 1h window leaves room for gaps.

exit status:
  0  recommendations printed
  1  unexpected failure (--log-level debug shows where)
  2  bad arguments or input: no cluster named, unreadable file, invalid spec, no Prometheus URL
  3  Prometheus or the Kubernetes API could not be reached or refused a request
  4  no engine metrics for the cluster in the window
  5  insufficient data: less engine usage than --min-evidence
"""


class CommandFailed(Exception):
    """Ends `recommend` with one `error: ...` line on stderr and `code` as the exit status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _documents(path: str) -> list[dict[str, Any]]:
    """The BrainAIClusters in a YAML file, `kind: List` items included (what `kubectl get -o yaml` writes)."""
    import yaml

    from brainai_operator import api

    try:
        with open(path, encoding="utf-8") as fh:
            docs = list(yaml.safe_load_all(fh))
    except OSError as exc:
        raise CommandFailed(EXIT_USAGE, f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CommandFailed(EXIT_USAGE, f"{path} is not valid YAML: {first}") from None
    found: list[dict[str, Any]] = []
    for doc in docs:  # extended as it goes: a List's items are read after the documents
        if isinstance(doc, dict) and doc.get("kind") == "List":
            docs.extend(doc.get("items") or [])
        elif isinstance(doc, dict) and doc.get("kind") == api.KIND:
            meta = doc.get("metadata")
            if not isinstance(meta, dict) or not meta.get("name"):
                raise CommandFailed(EXIT_USAGE, f"a BrainAICluster in {path} has no metadata.name")
            found.append(doc)
    return found


def _cluster_from_file(path: str, name: str | None, namespace: str | None) -> dict[str, Any]:
    """The one BrainAICluster in `path` that CLUSTER and -n select; its metadata names it, so with a
    single cluster in the file neither is needed."""
    docs = _documents(path)
    if not docs:
        raise CommandFailed(EXIT_USAGE, f"no BrainAICluster in {path}")

    def label(doc: dict[str, Any]) -> str:
        meta = doc["metadata"]
        return f"{meta.get('namespace') or namespace or 'default'}/{meta['name']}"

    match = [
        d
        for d in docs
        if (name is None or d["metadata"]["name"] == name)
        and (namespace is None or d["metadata"].get("namespace") in (None, namespace))
    ]
    if not match:
        wanted = " ".join(
            w for w in (name and f"named {name}", namespace and f"in namespace {namespace}") if w
        )
        holds = ", ".join(label(d) for d in docs)
        raise CommandFailed(EXIT_USAGE, f"no BrainAICluster {wanted} in {path} (it holds {holds})")
    if len(match) > 1:
        names = ", ".join(label(d) for d in match)
        raise CommandFailed(
            EXIT_USAGE, f"{path} holds {len(match)} BrainAIClusters ({names}): name one as CLUSTER (and -n)"
        )
    obj = match[0]
    obj["metadata"]["namespace"] = obj["metadata"].get("namespace") or namespace or "default"
    return obj


def _api_host() -> str:
    """The API server the loaded configuration points at, for messages."""
    from kubernetes import client as k8s

    from brainai_operator.prometheus import display_url

    return display_url(k8s.Configuration.get_default_copy().host or "") or "(unknown)"


def _cluster_from_api(name: str, namespace: str) -> dict[str, Any]:
    """The BrainAICluster from the API server, each way that can fail turned into one line."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    from brainai_operator import api
    from brainai_operator.client import Kube
    from brainai_operator.prometheus import connection_failure

    log = logging.getLogger(__name__)
    try:
        kube = Kube()  # the dynamic client asks the server for its version here already
        obj = kube.get(api.API_VERSION, api.KIND, name, namespace)
    except ConfigException as exc:
        log.debug("no Kubernetes configuration", exc_info=True)
        raise CommandFailed(
            EXIT_USAGE,
            f"no Kubernetes configuration ({exc}); pass -f FILE to read the BrainAICluster from a file",
        ) from None
    except ResourceNotFoundError:
        raise CommandFailed(
            EXIT_UNREACHABLE,
            f"the Kubernetes API at {_api_host()} does not serve {api.KIND} (is the CRD installed?)",
        ) from None
    except ApiException as exc:
        log.debug("reading %s %s/%s", api.KIND, namespace, name, exc_info=True)
        raise CommandFailed(
            EXIT_UNREACHABLE,
            f"the Kubernetes API at {_api_host()} refused to read {api.KIND} {namespace}/{name} "
            f"(HTTP {exc.status} {exc.reason})",
        ) from None
    except Exception as exc:  # urllib3 and socket errors: the API server is not there
        log.debug("reading %s %s/%s", api.KIND, namespace, name, exc_info=True)
        raise CommandFailed(
            EXIT_UNREACHABLE,
            f"the Kubernetes API at {_api_host()} is unreachable ({connection_failure(exc)})",
        ) from None
    if obj is None:
        raise CommandFailed(EXIT_USAGE, f"{api.KIND} {namespace}/{name} not found")
    return obj


def _load_cluster(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        return _cluster_from_file(args.file, args.cluster, args.namespace)
    return _cluster_from_api(args.cluster, args.namespace or "default")


def _invalid_spec(exc: Exception) -> str:
    from pydantic import ValidationError

    from brainai_operator import api

    if isinstance(exc, ValidationError):
        return api.describe_invalid_spec(exc)
    return " ".join(str(exc).split())


def _cli_logging(level: str) -> None:
    """Our messages at `level`; the HTTP libraries only at debug, since theirs quote whole request URLs
    (for Prometheus, the URL-encoded queries)."""
    number = log_level(level) or logging.WARNING
    logging.basicConfig(level=number, format="%(levelname)s %(name)s: %(message)s")
    quiet = logging.DEBUG if number <= logging.DEBUG else logging.ERROR
    for noisy in ("urllib3", "requests", "kubernetes", "prometheus_api_client"):
        logging.getLogger(noisy).setLevel(quiet)


def _recommend(args: argparse.Namespace) -> int:
    """The advisor's report for one cluster: the same queries and arithmetic as the operator's loop.

    Every way it can fail ends in one line on stderr and an exit status of its own (_recommend_epilog);
    the detail is at --log-level debug.
    """
    _cli_logging(args.log_level)
    try:
        return _recommend_one(args)
    except CommandFailed as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logging.getLogger(__name__).debug("recommend failed", exc_info=True)
        text = " ".join(str(exc).split())[:300]
        sys.stderr.write(f"error: {type(exc).__name__}: {text} (--log-level debug shows where)\n")
        return EXIT_INTERNAL


def _recommend_one(args: argparse.Namespace) -> int:
    import json
    from urllib.parse import urlsplit

    from pydantic import ValidationError

    from brainai_operator import api
    from brainai_operator.advisor import format_report
    from brainai_operator.clock import rfc3339, utcnow
    from brainai_operator.durations import Window, parse_duration
    from brainai_operator.prometheus import PrometheusError, connect, display_url, fetch_usage
    from brainai_operator.rightsizing import Current, recommend, shortfall
    from brainai_operator.strategies import ConfigError, resolve

    obj = _load_cluster(args)
    key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
    where = f"{key[0]}/{key[1]}"
    try:
        spec = api.BrainAIClusterSpec.model_validate(obj.get("spec") or {})
        current = Current.of(resolve(spec))
    except (ValidationError, ConfigError) as exc:
        raise CommandFailed(EXIT_USAGE, f"{api.KIND} {where} has an invalid {_invalid_spec(exc)}") from None
    monitoring = spec.monitoring
    url = args.prometheus_url or (monitoring.prometheus_url if monitoring else None)
    if not url:
        raise CommandFailed(
            EXIT_USAGE,
            f"no Prometheus URL for {where}: pass --prometheus-url, set PROMETHEUS_URL, "
            "or set spec.monitoring.prometheusUrl",
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandFailed(EXIT_USAGE, f"not an http(s) URL for Prometheus: {display_url(url)!r}")
    window = Window.of(args.window or (monitoring.window if monitoring else None) or "1h")
    now = utcnow()
    try:
        with connect(url) as prom:
            usage, _, _ = fetch_usage(prom, [key], window, now.timestamp())
    except PrometheusError as exc:
        raise CommandFailed(EXIT_UNREACHABLE, str(exc)) from None
    found = usage[key]
    no_data = CommandFailed(
        EXIT_NO_DATA,
        f"no engine metrics for {where} (service {key[1]}-engine) over the last {window.label} "
        f"at {display_url(url)}: is a ServiceMonitor scraping it?",
    )
    if found.samples == 0:
        raise no_data
    thin = shortfall(found, window, parse_duration(args.min_evidence))
    if thin is not None:
        sys.stderr.write(thin.message(key, window) + "\n")
        return EXIT_INSUFFICIENT
    rec = recommend(found, current, window, rfc3339(now))
    if rec is None:  # CPU but no memory series
        raise no_data
    if args.json:
        sys.stdout.write(json.dumps(rec.wire(), indent=2) + "\n")
    else:
        sys.stdout.write(format_report(key, current, rec, found, args.width))
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _crd(_: argparse.Namespace) -> int:
    from brainai_operator.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def main(argv: list[str] | None = None) -> int:
    from brainai_operator.durations import MIN_EVIDENCE_SECONDS, format_duration

    parser = argparse.ArgumentParser(
        prog="brain-ai-operator", description="Kubernetes operator for BrainAICluster resources."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="watch BrainAIClusters and reconcile them")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    run.add_argument("--workers", type=int, default=2, help="BrainAIClusters reconciled in parallel")
    run.add_argument(
        "--resync-seconds",
        type=float,
        default=300.0,
        help="how often every BrainAICluster is reconciled even without events (from the watch cache: "
        "a converged cluster costs no API request)",
    )
    run.add_argument(
        "--max-backoff",
        type=float,
        default=60.0,
        help="longest wait, in seconds, between retries of a cluster whose pass keeps failing (the wait "
        "starts at 2 s and doubles per failure, less up to a fifth of jitter)",
    )
    run.add_argument("--metrics-port", type=int, default=8081, help="Prometheus metrics port")
    run.add_argument("--health-port", type=int, default=8080, help="liveness endpoint port (/healthz)")
    run.add_argument("--leader-elect", action="store_true", help="hold a Lease so only one replica is active")
    run.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "default"))
    run.add_argument("--lease-name", default="brain-ai-operator")
    run.add_argument(
        "--prometheus-url",
        default=os.environ.get("PROMETHEUS_URL", ""),
        help="Prometheus the advisor reads engine usage from (env PROMETHEUS_URL; "
        "spec.monitoring.prometheusUrl overrides it per cluster). "
        "Unset: advice only where a cluster names one",
    )
    run.add_argument(
        "--advisor-interval",
        type=float,
        default=300.0,
        help="seconds between advisor passes (one batch of queries for all clusters)",
    )
    run.add_argument(
        "--advisor-window",
        type=_duration,
        default="1h",
        help="history recommendations are computed over (spec.monitoring.window overrides it)",
    )
    run.add_argument(
        "--postgres-image",
        default=os.environ.get("BRAINAI_POSTGRES_IMAGE", "brain-ai/postgres:15"),
        help="PostgreSQL image where spec.postgres.image is unset (env BRAINAI_POSTGRES_IMAGE)",
    )
    run.add_argument(
        "--redis-image",
        default=os.environ.get("BRAINAI_REDIS_IMAGE", "redis:7.0"),
        help="Redis image where spec.redis.image is unset (env BRAINAI_REDIS_IMAGE)",
    )
    run.set_defaults(func=_run)

    recommend = sub.add_parser(
        "recommend",
        help="print right-sizing recommendations for one BrainAICluster from Prometheus",
        description="Right-sizing recommendations for one BrainAICluster from its engines' usage\n"
        "in Prometheus: the same queries and arithmetic as the operator's advisor.",
        epilog=_recommend_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recommend.add_argument(
        "cluster",
        nargs="?",
        metavar="CLUSTER",
        help="BrainAICluster name (optional with -f: the file's metadata names it)",
    )
    recommend.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="its namespace (default: the file's metadata.namespace, else default)",
    )
    recommend.add_argument(
        "--prometheus-url",
        default=os.environ.get("PROMETHEUS_URL", ""),
        help="Prometheus to read from "
        "(env PROMETHEUS_URL; default: the cluster's spec.monitoring.prometheusUrl)",
    )
    recommend.add_argument(
        "--window",
        type=_duration,
        default=None,
        help="history to read, e.g. 1h (default: spec.monitoring.window, else 1h)",
    )
    recommend.add_argument(
        "--min-evidence",
        type=_duration,
        default=format_duration(MIN_EVIDENCE_SECONDS),
        help="least engine usage to advise on (default %(default)s; below it: exit status 5)",
    )
    recommend.add_argument(
        "-f",
        "--file",
        help="read the BrainAICluster from this YAML file instead of the Kubernetes API",
    )
    recommend.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    recommend.add_argument("--width", type=_positive, default=60, help="columns of the charts")
    recommend.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error"],
        help="debug shows why a request failed in full",
    )
    recommend.set_defaults(func=_recommend)

    crd = sub.add_parser("crd", help="print the BrainAICluster CustomResourceDefinition")
    crd.set_defaults(func=_crd)

    args = parser.parse_args(argv)
    if args.command == "recommend" and not (args.cluster or args.file):
        recommend.error("name the BrainAICluster (CLUSTER), or pass -f FILE to read it from a file")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
