"""Redis Cluster for the engines: cluster-enabled nodes, a headless Service, a Job that forms it.

The Job is named after the node count, so growing or shrinking the cluster creates a new Job: it adds
new nodes and rebalances slots onto them, or moves everything off the nodes that leave, which the
StatefulSet keeps until that Job succeeded (`nodes_to_keep`); its script is idempotent. The password
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
    disruption_budget,
    labels,
    metadata,
    pod_security,
    secret,
    selector_labels,
    spread_over_nodes,
)
from brainai_operator.strategies import DataTier

COMPONENT = "redis"
JOB_COMPONENT = "redis-cluster-job"
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
# Form, grow or shrink the cluster to $MASTERS masters with $REPLICAS_PER_MASTER replicas each, while
# $NODES_NOW pods run: idempotent, so re-running it after success changes nothing. Shrinking moves
# everything off the nodes that leave (ordinals from the new total up) before the operator scales
# the StatefulSet down: a replica that stays takes over a leaving master's slots (no data moves),
# the remaining slots migrate to the masters that stay, and the leaving nodes are reset and forgotten.
set -eu
export REDISCLI_AUTH="$REDIS_PASSWORD"
want_masters=$MASTERS; replicas=$REPLICAS_PER_MASTER; total=$((MASTERS * (1 + REPLICAS_PER_MASTER)))
now=${NODES_NOW:-$total}; [ "$now" -ge "$total" ] || now=$total
cli() { h=$1; shift; redis-cli -h "$h" "$@"; }
ips=""
i=0
while [ "$i" -lt "$now" ]; do
  host="$STATEFULSET-$i.$SERVICE"
  until ip=$(getent hosts "$host" | awk '{print $1}') && [ -n "$ip" ] && cli "$ip" ping | grep -q PONG; do
    echo "waiting for $host"; sleep 2
  done
  ips="$ips $ip"; i=$((i + 1))
done
staying=$(echo "$ips" | awk -v n="$total" '{for (i = 1; i <= n; i++) printf "%s ", $i}')
leaving=$(echo "$ips" | awk -v n="$total" '{for (i = n + 1; i <= NF; i++) printf "%s ", $i}')
first_ip=$(echo "$staying" | awk '{print $1}')
first="$first_ip:6379"
# role IP: master or slave; master_of IP: the node id a replica follows.
role() { cli "$1" cluster nodes | awk '/myself/ {print ($3 ~ /master/) ? "master" : "slave"}'; }
master_of() { cli "$1" cluster nodes | awk '/myself/ {print $4}'; }
myid() { cli "$1" cluster myid | tr -d '\\r'; }
# synced: every replica has its master's data (moving slots while one still loads it loses keys).
synced() {
  for ip in $ips; do
    cli "$ip" info replication | tr -d '\\r' | awk -F: '
      $1 == "role" { r = $2 } $1 == "master_link_status" { l = $2 } $1 == "master_sync_in_progress" { p = $2 }
      END { exit !(r == "master" || (l == "up" && p == "0")) }' || return 1
  done
}
# Gossip takes a moment to carry a change to every node: wait until they agree and every replica is
# in sync (two minutes at most), then show the check.
settle() {
  tries=0
  until { redis-cli --cluster check "$first" >/dev/null 2>&1 && synced; } || [ "$tries" -ge 120 ]; do
    sleep 1; tries=$((tries + 1))
  done
  redis-cli --cluster check "$first"
}
assigned=$(cli "$first_ip" cluster info | awk -F: '/cluster_slots_assigned/ {print $2}' | tr -d '\\r')
if [ "${assigned:-0}" = "0" ]; then
  echo "creating a cluster of $total nodes ($want_masters masters)"
  # shellcheck disable=SC2086
  redis-cli --cluster create $(for ip in $staying; do printf '%s:6379 ' "$ip"; done) \\
    --cluster-replicas "$replicas" --cluster-yes
  settle
  exit 0
fi
settle >/dev/null || true
for ip in $staying; do  # nodes new to the cluster join it (a reset node is new too)
  known=$(cli "$first_ip" cluster nodes | grep -c "$ip:6379@" || true)
  [ "$known" -gt 0 ] && continue
  masters=$(cli "$first_ip" cluster nodes | awk -v skip="$leaving" '
    BEGIN { split(skip, s, " "); for (k in s) gone[s[k] ":6379"] = 1 }
    { split($2, a, "@") } $3 ~ /master/ && $3 !~ /fail/ && !(a[1] in gone) { n++ } END { print n + 0 }')
  if [ "$masters" -lt "$want_masters" ]; then
    echo "adding master $ip"; redis-cli --cluster add-node "$ip:6379" "$first"
  else
    echo "adding replica $ip"; redis-cli --cluster add-node "$ip:6379" "$first" --cluster-slave
  fi
  sleep 2
done
if [ -n "$leaving" ]; then
  leaving_ids=""
  for ip in $leaving; do leaving_ids="$leaving_ids $(myid "$ip")"; done
  echo "shrinking to $total nodes: moving everything off$leaving"
  count_masters() { n=0; for ip in $staying; do [ "$(role "$ip")" = master ] && n=$((n + 1)); done; echo $n; }
  for ip in $staying; do
    [ "$(count_masters)" -lt "$want_masters" ] || break
    if [ "$(role "$ip")" = slave ] && echo "$leaving_ids" | grep -qw "$(master_of "$ip")"; then
      echo "promoting $ip over its leaving master"; cli "$ip" cluster failover
      tries=0
      until [ "$(role "$ip")" = master ] || [ "$tries" -ge 30 ]; do sleep 1; tries=$((tries + 1)); done
    fi
  done
  settle >/dev/null || true
  weights=""
  for id in $leaving_ids; do weights="$weights $id=0"; done
  # shellcheck disable=SC2086
  redis-cli --cluster rebalance "$first" --cluster-weight $weights --cluster-use-empty-masters --cluster-yes
  for ip in $leaving; do
    slots=$(cli "$ip" cluster nodes | awk '/myself/ {print NF - 8}')
    [ "$slots" -le 0 ] || { echo "$ip still holds slots"; exit 1; }
  done
  for ip in $staying; do  # replicas of leaving masters follow the staying master with the fewest
    [ "$(role "$ip")" = slave ] && echo "$leaving_ids" | grep -qw "$(master_of "$ip")" || continue
    target=$(cli "$first_ip" cluster nodes | awk -v skip="$leaving_ids" '
      BEGIN { split(skip, s, " "); for (k in s) gone[s[k]] = 1 }
      $3 ~ /master/ && !($1 in gone) { n[$1] += 0 } $3 ~ /slave/ && !($1 in gone) { n[$4]++ }
      END {
        best = ""; for (m in n) if (!(m in gone) && (best == "" || n[m] < n[best])) best = m; print best
      }')
    echo "$ip follows $target"; cli "$ip" cluster replicate "$target"
  done
  for ip in $leaving; do
    cli "$ip" flushall >/dev/null 2>&1 || true  # a master with no slots left; a replica refuses
    cli "$ip" cluster reset hard
  done
  for id in $leaving_ids; do
    for ip in $staying; do cli "$ip" cluster forget "$id" >/dev/null 2>&1 || true; done
  done
fi
settle >/dev/null || true  # rebalancing needs every node to agree
redis-cli --cluster rebalance "$first" --cluster-use-empty-masters --cluster-yes || true
settle
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


def nodes_to_keep(want: int, live: dict[str, Any] | None, job: dict[str, Any] | None) -> int:
    """How many nodes the StatefulSet runs: `want`, except while shrinking, when the nodes that leave
    stay until the cluster Job for `want` (`job`, as it is now) has moved everything off them."""
    running = int(((live or {}).get("spec") or {}).get("replicas") or 0)
    if running <= want:
        return want
    containers = ((((job or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    env = {e.get("name"): e.get("value") for e in (containers or [{}])[0].get("env") or []}
    drained = env.get("NODES_NOW") == str(running) and ((job or {}).get("status") or {}).get("succeeded")
    return want if drained else running


def build_redis_statefulset(cluster: str, namespace: str, tier: DataTier, nodes: int) -> dict[str, Any]:
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
            "replicas": nodes,
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
                    "topologySpreadConstraints": spread_over_nodes(cluster, COMPONENT),
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


def build_redis_cluster_job(cluster: str, namespace: str, tier: DataTier, nodes: int) -> dict[str, Any]:
    n = names(cluster)
    env = [
        _password_env(cluster),
        {"name": "STATEFULSET", "value": n["nodes"]},
        {"name": "SERVICE", "value": f"{n['nodes']}.{namespace}.svc"},
        {"name": "MASTERS", "value": str(tier.masters)},
        {"name": "REPLICAS_PER_MASTER", "value": str(tier.replicas_per_master)},
        {"name": "NODES_NOW", "value": str(nodes)},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(cluster_job_name(cluster, tier.replicas), namespace, cluster, COMPONENT),
        "spec": {
            "backoffLimit": 10,
            "activeDeadlineSeconds": 1800,
            "template": {
                # Not the nodes' component: the nodes' Service, StatefulSet and budget must not select it.
                "metadata": {"labels": labels(cluster, JOB_COMPONENT)},
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
    cluster: str, namespace: str, tier: DataTier, passwords: dict[str, str], nodes: int | None = None
) -> list[dict[str, Any]]:
    """Everything a managed Redis Cluster needs; nothing for an external one. `nodes` is what
    `nodes_to_keep` says the StatefulSet runs (default: the tier's node count)."""
    if tier.external:
        return []
    nodes = max(nodes or 0, tier.replicas)
    n = names(cluster)
    return [
        build_redis_secret(cluster, namespace, passwords),
        build_redis_scripts(cluster, namespace),
        build_redis_service(cluster, namespace),
        build_redis_statefulset(cluster, namespace, tier, nodes),
        disruption_budget(n["nodes"], namespace, cluster, COMPONENT, selector_labels(cluster, COMPONENT)),
        build_redis_cluster_job(cluster, namespace, tier, nodes),
    ]
