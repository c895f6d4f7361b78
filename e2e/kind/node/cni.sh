#!/bin/sh
# The pod network of the project's kind nodes, standing in for kindnetd (whose Go module is not
# served by the module proxy). Runs on every node (DaemonSet, host network, NET_ADMIN) and keeps:
#   * /etc/cni/net.d/10-kindnet.conflist: ptp + host-local IPAM on this node's spec.podCIDR, as
#     kindnetd writes it; the kubelet reports the node Ready once it exists;
#   * a route to every other node's podCIDR through that node's InternalIP (the nodes share one
#     layer-2 Docker network), so pods reach pods on other nodes by Pod IP.
# Unlike kindnetd it does no masquerading (nothing here reaches outside) and enforces no
# NetworkPolicy.
set -u
CONF=/etc/cni/net.d/10-kindnet.conflist
SA=/var/run/secrets/kubernetes.io/serviceaccount
# kind fills in CONTROL_PLANE_ENDPOINT: the API server is reachable before kube-proxy programs
# the kubernetes Service.
SERVER=${CONTROL_PLANE_ENDPOINT:-$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT}
NODES='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}'
kc() { kubectl --server="https://$SERVER" --certificate-authority=$SA/ca.crt --token="$(cat $SA/token)" "$@"; }
conflist() {
  printf '{"cniVersion":"0.3.1","name":"kindnet","plugins":[{"type":"ptp","ipMasq":false,"mtu":1500,'
  printf '"ipam":{"type":"host-local","dataDir":"/run/cni-ipam-state","routes":[{"dst":"0.0.0.0/0"}],'
  printf '"ranges":[[{"subnet":"%s"}]]}},{"type":"portmap","capabilities":{"portMappings":true}}]}\n' "$1"
}
while :; do
  if kc get nodes -o jsonpath="$NODES" >/tmp/nodes 2>/tmp/error; then
    while read -r name cidr ip; do
      [ -n "$cidr" ] && [ -n "$ip" ] || continue
      if [ "$name" = "$NODE_NAME" ]; then
        want=$(conflist "$cidr")
        if [ "$(cat $CONF 2>/dev/null)" != "$want" ]; then
          echo "$want" >$CONF.tmp && mv $CONF.tmp $CONF && echo "wrote $CONF for $cidr"
        fi
      elif ! ip route show "$cidr" | grep -q "via $ip "; then
        ip route replace "$cidr" via "$ip" && echo "route $cidr via $ip ($name)"
      fi
    done </tmp/nodes
  else
    echo "listing nodes failed: $(cat /tmp/error)"
  fi
  sleep 5
done
