#!/usr/bin/env bash
# make demo: the first slice for a newcomer. A loopback registry (Debian's
# docker-registry) that notifies assayd of pushes; assayd on its embedded
# defaults (it starts its own containerd) with a private socket and state
# dir and the analyzers enabled; OSV advisories imported offline with
# `assay db import`; a real image built here (a Go program pinned to an old
# golang.org/x/text, and an npm app with old lodash and minimist) pushed,
# scanned because of the push alone, and its report printed. With
# ../shared beside the checkout, the real Debian 12 image and all of the
# shared OSV data are added.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "$(id -u)" != 0 ]; then
  echo "demo: run as root (assayd mounts read-only image views and builds sandboxes)" >&2
  exit 1
fi
./e2e/deps.sh
make build

work=$(mktemp -d /tmp/assay-demo.XXXXXX)
chmod 711 "$work" # the sandboxes traverse it to reach their root filesystems
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
hook=$(free_port)
token=demo-webhook-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
notifications:
  endpoints:
    - name: assay
      url: http://127.0.0.1:$hook/
      headers: {Authorization: ["Bearer $token"]}
      timeout: 2s
      threshold: 3
      backoff: 1s
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

sock="$work/assayd.sock"
# Every other setting is assayd's default; vulndb.sources is off because
# this machine has no network (the default fetches OSV's public archives):
# the advisories are imported offline below instead.
ASSAY_SOCKET_PATH="$sock" ASSAY_STATE_DIR="$work/state" ASSAY_VULNDB_SOURCES="" \
  ASSAY_WEBHOOK_LISTEN="127.0.0.1:$hook" ASSAY_WEBHOOK_TOKEN="$token" \
  ASSAY_WEBHOOK_REGISTRIES="127.0.0.1:$port=127.0.0.1:$port" \
  bin/assayd >"$work/assayd.log" 2>&1 &
pids+=($!)
assay() { bin/assay --socket "$sock" "$@"; }
for _ in $(seq 100); do assay health >/dev/null 2>&1 && break; sleep 0.1; done
if ! assay health; then
  echo "demo: assayd did not start; its log:" >&2
  cat "$work/assayd.log" >&2
  exit 1
fi

osv=(e2e/testdata/osv-go e2e/testdata/osv-npm)
if [ -d ../shared/testdata/osv ]; then osv=(../shared/testdata/osv e2e/testdata/osv-npm); fi
echo
echo "demo: importing OSV advisories: ${osv[*]}"
assay db import "${osv[@]}"
assay db status

echo
echo "demo: building an image: a Go program pinned to golang.org/x/text v0.3.7, and an npm app"
(cd analyzers/gobinary/testdata/prog && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath -o "$work/prog" .)
image="127.0.0.1:$port/demo/app:1"
bin/mkimage -push "$image" "$work/prog:/usr/local/bin/prog" analyzers/npm/testdata/app:/app

# No `assay scan`: the push notification starts the scan. Wait for its report.
echo "demo: pushed $image; the registry notifies assayd, which scans it"
# finished PATTERN: the digest of the newest finished scan whose image has PATTERN.
finished() {
  assay status -o json | python3 -c '
import json, sys
scans = [s for s in json.load(sys.stdin)["scans"] if sys.argv[1] in s["image"] and s["status"] in ("done", "failed")]
print(scans[-1].get("digest") or scans[-1]["id"] if scans else "")' "$1"
}
digest=""
for _ in $(seq 900); do digest=$(finished demo/app); [ -n "$digest" ] && break; sleep 0.2; done
echo
assay report "$digest" || true

if [ -f ../shared/testdata/images/debian-12-minbase.oci.tar ]; then
  echo
  echo "demo: pushing the real Debian 12 image from ../shared"
  skopeo copy -q --dest-tls-verify=false oci-archive:../shared/testdata/images/debian-12-minbase.oci.tar \
    "docker://127.0.0.1:$port/library/debian:12"
  digest=""
  for _ in $(seq 900); do digest=$(finished library/debian); [ -n "$digest" ] && break; sleep 0.2; done
  echo
  assay report "$digest" || true
fi

echo
echo "demo: also try: bin/assay --socket $sock report IMAGE -o sarif|cyclonedx|spdx, vuln CVE-2021-44906, packages lodash"
echo "demo: assayd log (last lines):"
tail -n 15 "$work/assayd.log"
