"""Console entry point `brain-ai-operator`: `run` the controller, or print the `crd`."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from brainai_operator import __version__


def _run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    from brainai_operator import handlers
    from brainai_operator.client import Kube
    from brainai_operator.leader import LeaderElector

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("kubernetes", "kopf.objects", "kopf.activities"):  # one line per watch event otherwise
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    start_http_server(args.metrics_port)
    if args.leader_elect:
        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        LeaderElector(Kube(), args.lease_namespace, args.lease_name, identity).acquire()
    handlers.OPTIONS.update(
        workers=args.workers, resync_seconds=args.resync_seconds, namespaces=args.namespace or None
    )
    kopf.run(
        standalone=True,  # one active replica is the leader lease's job, not kopf peering's
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz",
    )
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
    run.set_defaults(func=_run)

    crd = sub.add_parser("crd", help="print the BrainAICluster CustomResourceDefinition")
    crd.set_defaults(func=_crd)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
