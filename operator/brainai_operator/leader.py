"""One active operator among replicas: a coordination.k8s.io Lease.

A replica that does not hold the lease waits before starting kopf; the holder renews it and, if it
cannot renew before the lease would expire, exits so that its pod restarts as a standby. That way
two replicas never reconcile at once. While it waits, a standby answers its liveness probe itself
(kopf, which normally does, has not started), so the kubelet does not restart a healthy standby.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from brainai_operator.client import Kube
from brainai_operator.clock import parse_rfc3339_micro, rfc3339_micro, utcnow
from brainai_operator.metrics import LEADER

log = logging.getLogger(__name__)


def _parse(value: str | None) -> dt.datetime | None:
    return parse_rfc3339_micro(value) if value else None


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: int = 15,
        renew_seconds: float = 5.0,
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self.leases = kube.resource("coordination.k8s.io/v1", "Lease")

    def _spec(self, acquired: dt.datetime, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "acquireTime": rfc3339_micro(acquired),
            "renewTime": rfc3339_micro(utcnow()),
            "leaseTransitions": transitions,
        }

    def try_acquire(self) -> bool:
        try:
            lease = self.leases.get(name=self.name, namespace=self.namespace).to_dict()
        except NotFoundError:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(utcnow(), 0),
            }
            try:
                self.leases.create(body=body, namespace=self.namespace)
                return True
            except ConflictError:
                return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds") or self.lease_seconds
        expired = renewed is None or (utcnow() - renewed).total_seconds() > duration
        if holder not in (None, "", self.identity) and not expired:
            return False
        if holder == self.identity:
            acquired, transitions = (
                _parse(spec.get("acquireTime")) or utcnow(),
                spec.get("leaseTransitions", 0),
            )
        else:
            acquired, transitions = utcnow(), spec.get("leaseTransitions", 0) + 1
        lease["spec"] = self._spec(acquired, transitions)
        try:
            self.leases.replace(body=lease, namespace=self.namespace)  # resourceVersion guards the race
            return True
        except ConflictError:
            return False

    def release(self) -> None:
        """Give the lease up on a clean shutdown, so a standby takes over at once."""
        try:
            lease = self.leases.get(name=self.name, namespace=self.namespace).to_dict()
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                self.leases.replace(body=lease, namespace=self.namespace)
                log.info("released leader lease %s/%s", self.namespace, self.name)
        except Exception:  # the lease simply expires instead
            log.warning("could not release the leader lease", exc_info=True)
        LEADER.set(0)

    def acquire(self) -> None:
        """Block until this replica leads."""
        announced = False
        while not self.try_acquire():
            if not announced:
                log.info("standing by: lease %s/%s is held by another replica", self.namespace, self.name)
                announced = True
            time.sleep(self.renew_seconds)
        LEADER.set(1)
        log.info("acquired leader lease %s/%s as %s", self.namespace, self.name, self.identity)
        threading.Thread(target=self._renew_forever, name="lease-renewal", daemon=True).start()

    def _renew_forever(self) -> None:
        last_ok = time.monotonic()
        while True:
            time.sleep(self.renew_seconds)
            try:
                if self.try_acquire():
                    last_ok = time.monotonic()
                    continue
                log.error("lost leader lease %s/%s to another replica; exiting", self.namespace, self.name)
            except Exception:
                if time.monotonic() - last_ok < self.lease_seconds - self.renew_seconds:
                    log.warning("could not renew leader lease; retrying", exc_info=True)
                    continue
                log.error("could not renew leader lease before it expires; exiting", exc_info=True)
            LEADER.set(0)
            os._exit(1)


class _StandbyHealth(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path.split("?")[0] == "/healthz"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"standby\n" if ok else b"not found\n")

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no log lines
        pass


@contextlib.contextmanager
def standby_liveness(port: int) -> Iterator[None]:
    """Serve /healthz on `port` until the block ends (then kopf takes the port over)."""
    server = ThreadingHTTPServer(("0.0.0.0", port), _StandbyHealth)
    thread = threading.Thread(target=server.serve_forever, name="standby-liveness", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
