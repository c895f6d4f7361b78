"""Redis Cluster for the engines: cluster-enabled nodes, a headless Service, a Job that forms it.

The Job is named after the node count, so growing the cluster creates a new Job that adds the new
nodes and rebalances slots onto them; its script is idempotent and safe to re-run. The password
reaches redis-server through a config file written at start, never through command-line args.
Nodes announce their stable per-pod hostname (clients are redirected by name) and refresh peer
addresses in nodes.conf from those names at start, so the cluster survives pods moving.
"""

from __future__ import annotations

from typing import Any

from brainai_operator.resources.common import (
    child_name,
    claim_template,
    container_security,
    labels,
    metadata,
    pod_security,
    secret,
    selector_labels,
)
from brainai_operator.strategies import DataTier

COMPONENT = "redis"
PORT, BUS_PORT = 6379, 16379
RUN_AS = 999  # the redis user of the official image
SECRET_KEYS = ("password",)


def names(cluster: str) -> dict[str, str]:
    return {
        "nodes": child_name(cluster, "redis"),
        "secret": child_name(cluster, "redis-credentials"),
        "scripts": child_name(cluster, "redis-scripts"),
    }


def cluster_job_name(cluster: str, nodes: int) -> str:
    return child_name(cluster, f"redis-cluster-n{nodes}")


def build_redis_secret(cluster: str, namespace: str, passwords: dict[str, str]) -> dict[str, Any]:
    n = names(cluster)
    url = f"redis://:{passwords['password']}@{n['nodes']}.{namespace}.svc:{PORT}/0"
    return secret(
        n["secret"], namespace, cluster, COMPONENT, {"password": passwords["password"], "redis-url": url}
    )


START_NODE = """\
#!/bin/sh
# The password goes into a config file, so it is not visible in the process list.
set -eu
umask 077
printf 'requirepass "%s"\\nmasterauth "%s"\\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD" > /run/redis/auth.conf
me="$(cat /proc/sys/kernel/hostname).$SERVICE"
# nodes.conf remembers each peer by the IP it last had; pods that moved (all at once, say) have new
# ones, and nodes that knew no current address could never meet again. Each entry also carries the
# peer's announced hostname: put the address it resolves to now in place of the stale one.
if [ -s /data/nodes.conf ]; then
  tries=0
  while :; do
    stale=0
    : > /data/nodes.conf.new
    while read -r id addr rest; do
      case $addr in
        *:*@*,?*)  # ip:port@bus-port,hostname[,aux=value...]
          ipport=${addr%%,*}; tail=${addr#*,}; host=${tail%%,*}; aux=${tail#"$host"}
          ip=$POD_IP
          [ "$host" = "$me" ] || ip=$(getent hosts "$host" | awk '{print $1; exit}')
          if [ -n "$ip" ]; then addr="$ip:${ipport#*:},$host$aux"; else stale=$((stale + 1)); fi ;;
      esac
      echo "$id $addr $rest" >> /data/nodes.conf.new
    done < /data/nodes.conf
    tries=$((tries + 1))
    [ "$stale" -eq 0 ] || [ "$tries" -ge 15 ] && break
    sleep 2  # peers starting at the same time get their DNS records a moment later
  done
  mv /data/nodes.conf.new /data/nodes.conf
fi
exec redis-server /run/redis/auth.conf --port 6379 --cluster-enabled yes \\
  --cluster-config-file /data/nodes.conf --cluster-node-timeout 5000 --appendonly yes \\
  --dir /data --protected-mode no --cluster-announce-ip "$POD_IP" \\
  --cluster-announce-hostname "$me" --cluster-preferred-endpoint-type hostname
"""

ENSURE_CLUSTER = """\
#!/bin/sh
# Form the cluster, or grow it: idempotent, so re-running it after success changes nothing.
set -eu
export REDISCLI_AUTH="$REDIS_PASSWORD"
want_masters=$MASTERS; replicas=$REPLICAS_PER_MASTER; total=$((MASTERS * (1 + REPLICAS_PER_MASTER)))
addrs=""
i=0
while [ "$i" -lt "$total" ]; do
  host="$STATEFULSET-$i.$SERVICE"
  until ip=$(getent hosts "$host" | awk '{print $1}') && [ -n "$ip" ] \\
      && redis-cli -h "$ip" ping | grep -q PONG; do
    echo "waiting for $host"; sleep 2
  done
  addrs="$addrs $ip:6379"; i=$((i + 1))
done
first=$(echo "$addrs" | awk '{print $1}')
first_ip=${first%:*}
assigned=$(redis-cli -h "$first_ip" cluster info \\
  | awk -F: '/cluster_slots_assigned/ {print $2}' | tr -d '\\r')
if [ "${assigned:-0}" = "0" ]; then
  echo "creating a cluster of $total nodes ($want_masters masters)"
  # shellcheck disable=SC2086
  redis-cli --cluster create $addrs --cluster-replicas "$replicas" --cluster-yes
else
  for addr in $addrs; do
    ip=${addr%:*}
    known=$(redis-cli -h "$first_ip" cluster nodes | grep -c "$ip:6379@" || true)
    [ "$known" -gt 0 ] && continue
    masters=$(redis-cli -h "$first_ip" cluster nodes | grep -c master || true)
    if [ "$masters" -lt "$want_masters" ]; then
      echo "adding master $addr"; redis-cli --cluster add-node "$addr" "$first"
    else
      echo "adding replica $addr"; redis-cli --cluster add-node "$addr" "$first" --cluster-slave
    fi
    sleep 2
  done
  redis-cli --cluster rebalance "$first" --cluster-use-empty-masters --cluster-yes || true
fi
redis-cli --cluster check "$first"
"""


def build_redis_scripts(cluster: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names(cluster)["scripts"], namespace, cluster, COMPONENT),
        "data": {"start-node.sh": START_NODE, "ensure-cluster.sh": ENSURE_CLUSTER},
    }


def _password_env(cluster: str) -> dict[str, Any]:
    return {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": names(cluster)["secret"], "key": "password"}},
    }


def build_redis_statefulset(cluster: str, namespace: str, tier: DataTier) -> dict[str, Any]:
    n = names(cluster)
    ping = ["sh", "-c", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG']
    container = {
        "name": "redis",
        "image": tier.image,
        "command": ["sh", "/scripts/start-node.sh"],
        "env": [
            _password_env(cluster),
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "SERVICE", "value": f"{n['nodes']}.{namespace}.svc"},
        ],
        "ports": [
            {"name": "redis", "containerPort": PORT, "protocol": "TCP"},
            {"name": "bus", "containerPort": BUS_PORT, "protocol": "TCP"},
        ],
        "resources": tier.resources,
        "readinessProbe": {"exec": {"command": ping}, "initialDelaySeconds": 5, "periodSeconds": 5},
        "livenessProbe": {"exec": {"command": ping}, "initialDelaySeconds": 20, "periodSeconds": 10},
        "securityContext": container_security(RUN_AS),
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "run", "mountPath": "/run/redis"},
            {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
        ],
    }
    pod_labels = labels(cluster, COMPONENT)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(n["nodes"], namespace, cluster, COMPONENT),
        "spec": {
            "serviceName": n["nodes"],
            "replicas": tier.replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector_labels(cluster, COMPONENT)},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": tier.retention,
                "whenScaled": tier.retention,
            },
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "securityContext": pod_security(RUN_AS),
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": [
                        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                        {"name": "scripts", "configMap": {"name": n["scripts"], "defaultMode": 0o555}},
                    ],
                },
            },
            "volumeClaimTemplates": [claim_template(tier.storage_size, tier.storage_class)],
        },
    }


def build_redis_service(cluster: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(names(cluster)["nodes"], namespace, cluster, COMPONENT),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # nodes must find each other before they are ready
            "selector": selector_labels(cluster, COMPONENT),
            "ports": [
                {"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"},
                {"name": "bus", "port": BUS_PORT, "targetPort": "bus", "protocol": "TCP"},
            ],
        },
    }


def build_redis_cluster_job(cluster: str, namespace: str, tier: DataTier) -> dict[str, Any]:
    n = names(cluster)
    env = [
        _password_env(cluster),
        {"name": "STATEFULSET", "value": n["nodes"]},
        {"name": "SERVICE", "value": f"{n['nodes']}.{namespace}.svc"},
        {"name": "MASTERS", "value": str(tier.masters)},
        {"name": "REPLICAS_PER_MASTER", "value": str(tier.replicas_per_master)},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(cluster_job_name(cluster, tier.replicas), namespace, cluster, COMPONENT),
        "spec": {
            "backoffLimit": 10,
            "activeDeadlineSeconds": 1800,
            "template": {
                "metadata": {"labels": {**labels(cluster, COMPONENT), "brainai.io/job": "redis-cluster"}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(RUN_AS),
                    "containers": [
                        {
                            "name": "ensure-cluster",
                            "image": tier.image,
                            "command": ["sh", "/scripts/ensure-cluster.sh"],
                            "env": env,
                            "securityContext": container_security(RUN_AS),
                            "volumeMounts": [{"name": "scripts", "mountPath": "/scripts", "readOnly": True}],
                        }
                    ],
                    "volumes": [
                        {"name": "scripts", "configMap": {"name": n["scripts"], "defaultMode": 0o555}}
                    ],
                },
            },
        },
    }


def build_redis(
    cluster: str, namespace: str, tier: DataTier, passwords: dict[str, str]
) -> list[dict[str, Any]]:
    """Everything a managed Redis Cluster needs; nothing for an external one."""
    if tier.external:
        return []
    return [
        build_redis_secret(cluster, namespace, passwords),
        build_redis_scripts(cluster, namespace),
        build_redis_service(cluster, namespace),
        build_redis_statefulset(cluster, namespace, tier),
        build_redis_cluster_job(cluster, namespace, tier),
    ]
