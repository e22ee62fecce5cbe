#!/usr/bin/env bash
# A libvirtd of its own, as if on another host: its own mount namespace in which /run/libvirt, /var/lib/libvirt,
# /var/cache/libvirt, /var/log/libvirt and /etc/libvirt are folders under STATE (a copy of /etc/libvirt with its own
# host_uuid, no domains or networks of the system instance), its own virtlogd. The system libvirtd and its domains
# are not touched. Clients reach it with  virsh -c "qemu:///system?socket=STATE/run/libvirt-sock".
#   libvirt-private.sh start STATE UUID   starts virtlogd (daemon) and runs libvirtd in the foreground (exec)
#   libvirt-private.sh stop STATE         ends both (by their pid files); domains must have been destroyed first
# SHARPVMM_LIBVIRT_DEBUG=1 logs every QMP message to STATE/log/libvirtd.log. Needs root (unshare --mount).
set -euo pipefail
cmd=${1:?usage: libvirt-private.sh start STATE UUID | stop STATE}
S=${2:?state directory}
case "$cmd" in
stop)
  for d in libvirtd virtlogd; do
    # A daemon killed just before removes its own pid file: read it once, and a vanished file is no error.
    if pid=$(cat "$S/$d.pid" 2>/dev/null) && [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$S/$d.pid"
    fi
  done
  exit 0 ;;
start) ;;
*) echo "libvirt-private: unknown command '$cmd'" >&2; exit 2 ;;
esac
UUID=${3:?host uuid}
# virtlogd daemonizes: it must not keep a caller's descriptors (e.g. a "flock LOCK ..." lock) open after the caller.
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null || true
done
mkdir -p "$S"/run "$S"/lib "$S"/cache "$S"/log
rm -rf "$S/etc"
cp -a /etc/libvirt "$S/etc"
rm -f "$S"/etc/qemu/*.xml "$S"/etc/qemu/autostart/*.xml "$S"/etc/qemu/networks/autostart/*.xml
sed -i '/^host_uuid/d;/^log_outputs/d;/^log_filters/d' "$S/etc/libvirtd.conf"
echo "host_uuid = \"$UUID\"" >> "$S/etc/libvirtd.conf"
if [ "${SHARPVMM_LIBVIRT_DEBUG:-}" = 1 ]; then
  cat >> "$S/etc/libvirtd.conf" <<'CONF'
log_filters="1:qemu 1:libvirt 3:object 3:json 3:event 1:util 3:util.threadjob 3:rpc 3:access"
log_outputs="1:file:/var/log/libvirt/libvirtd.log"
CONF
fi
# Two daemons share the disk images of a migrating guest: neither may chown them to itself and back.
sed -i '/^dynamic_ownership/d' "$S/etc/qemu.conf"
echo 'dynamic_ownership = 0' >> "$S/etc/qemu.conf"
exec unshare --mount --propagation private -- /bin/sh -c "
  mount --bind '$S/run' /run/libvirt &&
  mount --bind '$S/lib' /var/lib/libvirt &&
  mount --bind '$S/cache' /var/cache/libvirt &&
  mount --bind '$S/log' /var/log/libvirt &&
  mount --bind '$S/etc' /etc/libvirt &&
  /usr/sbin/virtlogd -d -p '$S/virtlogd.pid' &&
  exec /usr/sbin/libvirtd -p '$S/libvirtd.pid'"
