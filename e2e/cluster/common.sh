# Paths shared by the cluster scripts and the pytest fixtures (which read the same defaults).
CACHE=${BRAINAI_CACHE:-$HOME/.cache/brain-ai}
BIN=$CACHE/bin
CLUSTER_NAME=${BRAINAI_CLUSTER_NAME:-brain-ai}
CLUSTER_NODES=${BRAINAI_CLUSTER_NODES:-3}
# What each kwok node offers, and the Service range: a fleet (make bench-operator) raises them.
NODE_PODS=${BRAINAI_NODE_PODS:-110}
NODE_CPU=${BRAINAI_NODE_CPU:-16}
NODE_MEMORY=${BRAINAI_NODE_MEMORY:-64Gi}
SERVICE_CIDR=${BRAINAI_SERVICE_CIDR:-10.96.0.0/16}
# Objects kube-controller-manager's deployment, replica set, stateful set and job controllers sync at once.
CONTROLLER_CONCURRENCY=${BRAINAI_CONTROLLER_CONCURRENCY:-5}
# Requests per second kube-controller-manager and kube-scheduler may send the API server (burst:
# twice that). Empty keeps their defaults (20 and 50), which a fleet of a thousand Deployments
# queues behind: each controller client spends a few writes per Deployment, ReplicaSet and Pod.
CLIENT_QPS=${BRAINAI_CLIENT_QPS:-}
export KWOK_WORKDIR=$CACHE/kwok
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER_NAME
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig.yaml
export PATH=$BIN:$PATH
# The project's Docker daemon (e2e/images/docker.sh): images and kind nodes live there.
export DOCKER_HOST=${BRAINAI_DOCKER_HOST:-unix:///run/brain-ai/docker.sock}
