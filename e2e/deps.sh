#!/usr/bin/env bash
# Installs the Debian packages that building and testing assay need, when
# any is missing (as root; a no-op when all are there). Used by `make test`,
# `make demo` and .ci/run.
#   systemd          systemd-analyze, systemd-socket-activate, sysusers, tmpfiles (unit files' tests)
#   procps           /bin/kill for ExecReload and pgrep in the tests
#   docker-registry  a real registry (distribution 2.8) on loopback
#   skopeo           pushes the shared OCI archive to it
#   curl             API checks and the demo
#   containerd       Debian's 1.6.20, to prove node mode against an older daemon
#   pigz             containerd unpacks with unpigz when it is on PATH
#   libseccomp-dev   assayd's sandbox seccomp filter (cgo, -tags seccomp)
#   runc             Debian's, the sandbox benchmark's point of comparison
#   debootstrap      a Debian 12 root for the test under a real systemd
#   systemd-container  systemd-nspawn, which boots that root with systemd as PID 1
set -euo pipefail
pkgs=(systemd procps docker-registry skopeo curl containerd pigz libseccomp-dev runc debootstrap systemd-container)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
