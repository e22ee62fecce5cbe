#!/usr/bin/env bash
# Starts libvirt's daemons by hand (these machines have no systemd, and Debian ships no init scripts for them):
# virtlogd (libvirt's default stdio_handler sends each domain's output through it), then libvirtd. Idempotent:
# daemons already running are left alone. Never starts libvirt's "default" NAT network (no bridge, no dnsmasq).
# SHARPVMM_LIBVIRT_DEBUG=1 also logs every QMP message libvirtd exchanges to /var/log/libvirt/libvirtd.log.
# Needs root and the packages libvirt-daemon-system and libvirt-clients (scripts/setup.sh installs them).
set -euo pipefail
if [ ! -x /usr/sbin/libvirtd ] || [ ! -x /usr/sbin/virtlogd ]; then
  echo "libvirt-up: libvirtd/virtlogd are not installed (apt-get install libvirt-daemon-system libvirt-clients)" >&2
  exit 1
fi
rm -f /etc/libvirt/qemu/networks/autostart/default.xml
if [ "${SHARPVMM_LIBVIRT_DEBUG:-}" = 1 ] && ! grep -q '^log_outputs=' /etc/libvirt/libvirtd.conf; then
  cat >> /etc/libvirt/libvirtd.conf <<'CONF'
log_filters="1:qemu 1:libvirt 3:object 3:json 3:event 1:util 3:util.threadjob 3:rpc 3:access"
log_outputs="1:file:/var/log/libvirt/libvirtd.log"
CONF
fi
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# The daemons outlive this script: they must not keep any descriptor it inherited open (a caller's
# "flock LOCK scripts/libvirt-up.sh" lock would stay held by libvirtd for as long as it runs).
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null || true
done
running /run/virtlogd.pid || /usr/sbin/virtlogd -d
running /run/libvirtd.pid || /usr/sbin/libvirtd -d
for _ in $(seq 1 60); do
  virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "libvirt-up: libvirtd did not answer within 30 s" >&2
exit 1
