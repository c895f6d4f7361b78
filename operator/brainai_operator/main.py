"""Console entry point `brain-ai-operator`: `run` the controller, or print the `crd`."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from brainai_operator import __version__


def _run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    from brainai_operator import handlers
    from brainai_operator.client import Kube
    from brainai_operator.leader import LeaderElector, standby_liveness
    from brainai_operator.prometheus import AdvisorSettings
    from brainai_operator.strategies import OperatorDefaults

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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


def _load_cluster(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        import yaml

        with open(args.file, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d and d.get("kind") == "BrainAICluster"]
        match = [d for d in docs if d["metadata"]["name"] == args.cluster] or docs
        if not match:
            raise SystemExit(f"no BrainAICluster in {args.file}")
        obj = match[0]
        obj["metadata"].setdefault("namespace", args.namespace)
        return obj
    from brainai_operator import api
    from brainai_operator.client import Kube

    obj = Kube().get(api.API_VERSION, api.KIND, args.cluster, args.namespace)
    if obj is None:
        raise SystemExit(f"BrainAICluster {args.namespace}/{args.cluster} not found")
    return obj


def _recommend(args: argparse.Namespace) -> int:
    """The advisor's report for one cluster: the same queries and arithmetic as the operator's loop."""
    import json

    from brainai_operator.advisor import format_report
    from brainai_operator.clock import rfc3339, utcnow
    from brainai_operator.durations import Window
    from brainai_operator.prometheus import AdvisorSettings, PrometheusError, connect, fetch_usage, targets
    from brainai_operator.rightsizing import recommend

    obj = _load_cluster(args)
    settings = AdvisorSettings(prometheus_url=args.prometheus_url or None, window=args.window or "1h")
    found = targets([obj], settings)
    if not found:
        sys.stderr.write("the BrainAICluster's spec is invalid: `kubectl describe` shows why\n")
        return 2
    target = found[0]
    url = args.prometheus_url or target.url
    if not url:
        sys.stderr.write("no Prometheus: pass --prometheus-url or set spec.monitoring.prometheusUrl\n")
        return 2
    window = Window.of(args.window or target.window)
    now = utcnow()
    try:
        with connect(url) as prom:
            usage, _, _ = fetch_usage(prom, [target.key], window, now.timestamp())
    except PrometheusError as exc:
        sys.stderr.write(f"{exc.reason}: {exc}\n")
        return 3
    rec = recommend(usage[target.key], target.current, window, rfc3339(now))
    if rec is None:
        sys.stderr.write(
            f"NoData: no engine metrics for {target.key[0]}/{target.key[1]} "
            f"over the last {window.label} at {url}\n"
        )
        return 4
    if args.json:
        sys.stdout.write(json.dumps(rec.wire(), indent=2) + "\n")
    else:
        sys.stdout.write(format_report(target.key, target.current, rec, usage[target.key], args.width))
    return 0


def _crd(_: argparse.Namespace) -> int:
    from brainai_operator.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def main(argv: list[str] | None = None) -> int:
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
        default=60.0,
        help="how often every BrainAICluster is reconciled even without events",
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
        default=os.environ.get("BRAINAI_POSTGRES_IMAGE", "postgres:15"),
        help="PostgreSQL image where spec.postgres.image is unset (env BRAINAI_POSTGRES_IMAGE)",
    )
    run.add_argument(
        "--redis-image",
        default=os.environ.get("BRAINAI_REDIS_IMAGE", "redis:7.0"),
        help="Redis image where spec.redis.image is unset (env BRAINAI_REDIS_IMAGE)",
    )
    run.set_defaults(func=_run)

    recommend = sub.add_parser(
        "recommend", help="print right-sizing recommendations for one BrainAICluster from Prometheus"
    )
    recommend.add_argument("cluster", help="BrainAICluster name")
    recommend.add_argument("-n", "--namespace", default="default")
    recommend.add_argument(
        "--prometheus-url",
        default=os.environ.get("PROMETHEUS_URL", ""),
        help="Prometheus to read from "
        "(env PROMETHEUS_URL; default: the cluster's spec.monitoring.prometheusUrl)",
    )
    recommend.add_argument(
        "--window", type=_duration, default=None, help="history to read, e.g. 1h (default 1h)"
    )
    recommend.add_argument(
        "-f",
        "--file",
        help="read the BrainAICluster from this YAML file instead of the Kubernetes API",
    )
    recommend.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    recommend.add_argument("--width", type=int, default=60, help="columns of the charts")
    recommend.set_defaults(func=_recommend)

    crd = sub.add_parser("crd", help="print the BrainAICluster CustomResourceDefinition")
    crd.set_defaults(func=_crd)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
