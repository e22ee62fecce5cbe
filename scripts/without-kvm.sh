#!/usr/bin/env bash
# Runs a command as on a host without /dev/kvm: in a private mount namespace whose /dev is a copy of this one
# without the kvm node, so "ls /dev/kvm" fails there as it does on such hosts. Needs root (unshare -m).
# Example: scripts/without-kvm.sh scripts/test.sh  (the KVM tests skip, everything else runs on emu). One thing it
# cannot show: libvirt cannot start domains inside it (moving /dev/pts into a domain's private /dev fails on this
# copied /dev), so the libvirt end-to-end test fails there while it passes on a real host without /dev/kvm.
set -euo pipefail
exec unshare -m --propagation private bash -c '
  set -e
  d=$(mktemp -d)
  mount -t tmpfs -o mode=755 devcopy "$d"
  for f in /dev/*; do
    n=${f#/dev/}
    case "$n" in kvm|pts|shm|mqueue|hugepages) continue;; esac
    cp -a "$f" "$d/" 2>/dev/null || true
  done
  for m in pts shm mqueue hugepages; do
    if [ -d /dev/$m ]; then mkdir -p "$d/$m"; mount --rbind /dev/$m "$d/$m"; fi
  done
  mount --move "$d" /dev
  exec "$@"' without-kvm "$@"
