#!/usr/bin/env bash
# Builds a real kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kustomize from
# the Go module proxy, once per machine, for the tests under test/kubernetes/. Nothing here is a stand-in: these are the upstream programs,
# compiled from their published modules. The result is cached by version, so a second run
# only prints the directory.
#
#   scripts/kube-binaries.sh          build if missing, print the directory holding the binaries
#
# QUILLMAN_TOOLS_DIR moves the cache (default ~/.cache/quillman/tools).
set -euo pipefail

K8S_VERSION=v1.34.4   # client-node ^1.4 is generated from Kubernetes 1.34
ETCD_VERSION=v3.6.4   # the etcd that Kubernetes 1.34 pins in its go.mod
KUSTOMIZE_VERSION=v5.8.1  # renders deploy/kubernetes/ (the same engine as `kubectl apply -k`)
TOOLS_DIR="${QUILLMAN_TOOLS_DIR:-$HOME/.cache/quillman/tools}"
OUT="$TOOLS_DIR/kube-$K8S_VERSION-etcd-$ETCD_VERSION"

say() { printf '\033[36m[kube-binaries]\033[0m %s\n' "$*" >&2; }

KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler)
complete=1
for bin in etcd kustomize "${KUBE_COMMANDS[@]}"; do [ -x "$OUT/$bin" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$OUT"
  exit 0
fi
command -v go >/dev/null || { say "Go is not installed: install Go 1.24 or newer (https://go.dev/dl), then run this again."; exit 1; }

mkdir -p "$OUT"
# Test files starting at once both land here: one builds, the other waits and finds it built.
exec 9>"$OUT/.lock"
flock 9
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

if [ ! -x "$OUT/etcd" ]; then
  say "building etcd $ETCD_VERSION (a minute or two)…"
  mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
  go mod init quillman.local/etcd-build >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
  CGO_ENABLED=0 go build -trimpath -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$OUT/etcd.tmp" "$OUT/etcd"
fi

if [ ! -x "$OUT/kustomize" ]; then
  say "building kustomize $KUSTOMIZE_VERSION (a minute or two)…"
  GOBIN="$WORK/kustomize-bin" CGO_ENABLED=0 go install -trimpath "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mv "$WORK/kustomize-bin/kustomize" "$OUT/kustomize"
fi

missing_kube=()
for cmd in "${KUBE_COMMANDS[@]}"; do [ -x "$OUT/$cmd" ] || missing_kube+=("$cmd"); done
if [ ${#missing_kube[@]} -gt 0 ]; then
  say "building ${missing_kube[*]} $K8S_VERSION (10–20 minutes each on two cores, once per machine)…"
  mkdir -p "$WORK/kube" && cd "$WORK/kube"
  go mod init quillman.local/kube-build >/dev/null 2>&1
  go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
  MODFILE="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  # k8s.io/kubernetes points its staging modules at ./staging; outside its repository they
  # resolve only through replace lines to their published v0.x tags.
  STAGING_VERSION="v0.${K8S_VERSION#v1.}"
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$MODFILE" | awk '{print $1}' | while read -r mod; do
    go mod edit -replace "$mod=$mod@$STAGING_VERSION"
  done
  MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
  LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR"
  for cmd in "${missing_kube[@]}"; do
    say "  $cmd…"
    go get "k8s.io/kubernetes/cmd/$cmd@$K8S_VERSION" >/dev/null 2>&1
    CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$OUT/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$OUT/$cmd.tmp" "$OUT/$cmd"
  done
fi

say "built into $OUT"
echo "$OUT"
