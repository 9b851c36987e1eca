#!/usr/bin/env bash
# make demo: a loopback registry (Debian's docker-registry), a real image
# built here (assay's own CLI binary in a one-layer image), assayd on its
# embedded defaults (it starts its own containerd) with a private socket and
# state dir, one scan, the report. What assayd can scan so far: it pulls the
# image through containerd, mounts a read-only view and records digest,
# platform, config and layers; no analyzer exists yet, so the verdict is
# "incomplete" (a scan that did not look is never called healthy).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "$(id -u)" != 0 ]; then
  echo "demo: run as root (assayd mounts read-only image views)" >&2
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

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 5055)
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

image="127.0.0.1:$port/demo/assay-cli:latest"
echo "demo: building and pushing $image"
bin/mkimage -push "$image" bin/assay:/usr/local/bin/assay

sock="$work/assayd.sock"
# The dpkg analyzer runs in its sandbox (this image has no dpkg database, so it
# reports none); with no vulnerability matching yet the verdict is "incomplete".
ASSAY_SOCKET_PATH="$sock" ASSAY_STATE_DIR="$work/state" ASSAY_PLUGINS_DIR="$root/bin/plugins" ASSAY_PLUGINS_ENABLED=dpkg \
  bin/assayd >"$work/assayd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do bin/assay --socket "$sock" health >/dev/null 2>&1 && break; sleep 0.1; done
if ! bin/assay --socket "$sock" health; then
  echo "demo: assayd did not start; its log:" >&2
  cat "$work/assayd.log" >&2
  exit 1
fi

echo "demo: scanning $image"
bin/assay --socket "$sock" scan --wait "$image" || true
echo
echo "demo: the report as JSON: bin/assay --socket SOCK report $image -o json"
bin/assay --socket "$sock" report "$image" -o json | head -40
echo
echo "demo: assayd log:"
cat "$work/assayd.log"
