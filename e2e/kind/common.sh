# Paths of the kind tier, shared by its scripts (sourced). The pytest fixtures read the same
# defaults (e2e/kube.py).
here_kind=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/versions.env
source "$here_kind/../cluster/versions.env"
# shellcheck source=../cluster/common.sh
source "$here_kind/../cluster/common.sh"
KIND_DIR=$CACHE/kind
KIND_CLUSTER=${BRAINAI_KIND_CLUSTER:-brain-ai-e2e}
KIND_KUBECONFIG=$KIND_DIR/kubeconfig
