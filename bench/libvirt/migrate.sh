#!/usr/bin/env bash
# virsh migrate --live between two libvirtd instances on this machine (each in its own mount namespace with its own
# host_uuid: scripts/libvirt-private.sh), over loopback, the disk on storage both see (a local folder: --unsafe tells
# libvirt it is shared); then virsh save and restore.
# SharpVmm beside QEMU (TCG) on the same microvm domain, an idle guest and one dirtying 128 MiB of its 256 MiB
# over and over. Reported: the migration's wall time (virsh migrate), the guest's downtime as the longest gap between
# two lines of the counter it prints every 10 ms on its console (as seen in the serial log on the host, so it
# includes console latency), and save/restore wall times. By hand, as root, after scripts/setup.sh and
# scripts/publish.sh; the system libvirtd is not used. QEMU's domain has no <acpi/> (microvm+ACPI hangs under TCG).
#   [LOADS="idle dirty"] bench/libvirt/migrate.sh [sharpvmm|qemu ...]
# SHARPVMM_LIBVIRT_DEBUG=1 keeps both daemons' QMP logs (/var/lib/sharpvmm-mig/bench-{a,b}/log/libvirtd.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
R=/var/lib/sharpvmm-mig
D=$R/bench-shared
mkdir -p $D
cp artifacts/bin/sharpvmm $D/sharpvmm.new && mv $D/sharpvmm.new $D/sharpvmm
ln -sf sharpvmm $D/qemu-system-x86_64
G=${SHARPVMM_GUEST_DIR:-$HOME/.cache/sharpvmm/guest}
cp "$G/vmlinuz" "$G/initrd.gz" $D/
WHO=${*:-sharpvmm qemu}

daemons=()
start_daemon() { # name uuid
  scripts/libvirt-private.sh start $R/$1 $2 >$R/$1.out 2>&1 &
  daemons+=($!)
  for _ in $(seq 1 120); do virsh -c "qemu+unix:///system?socket=$R/$1/run/libvirt-sock" version >/dev/null 2>&1 && return; sleep 0.5; done
  echo "migrate.sh: libvirtd $1 did not start: $(cat $R/$1.out)" >&2; exit 1
}
cleanup() {
  for n in bench-a bench-b; do
    for d in $(virsh -c "qemu+unix:///system?socket=$R/$n/run/libvirt-sock" list --name 2>/dev/null); do
      virsh -c "qemu+unix:///system?socket=$R/$n/run/libvirt-sock" destroy "$d" >/dev/null 2>&1 || true
    done
  done
  for p in "${daemons[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/libvirt-private.sh stop $R/bench-a; scripts/libvirt-private.sh stop $R/bench-b
  if [ -n "${stamper:-}" ]; then pkill -P "$stamper" 2>/dev/null || true; kill "$stamper" 2>/dev/null || true; fi
}
trap cleanup EXIT
rm -rf $R/bench-a $R/bench-b; mkdir -p $R/bench-a $R/bench-b
start_daemon bench-a 5a1b2c3d-0000-4000-8000-0000000000ba
start_daemon bench-b 5a1b2c3d-0000-4000-8000-0000000000bb
A="virsh -c qemu+unix:///system?socket=$R/bench-a/run/libvirt-sock"
B="virsh -c qemu+unix:///system?socket=$R/bench-b/run/libvirt-sock"
BURI="qemu+unix:///system?socket=$R/bench-b/run/libvirt-sock"
now() { date +%s.%N; }

# Stamps every line of the serial log with the host's time as it arrives (bash's EPOCHREALTIME: no fork a line).
stamp() { tail -n +1 -F "$1" 2>/dev/null | while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done > "$2"; }
# The longest gap between two consecutive counter lines stamped between $2 and $3 (seconds), and the median gap.
# (POSIX awk only: Debian's default awk is mawk, which has no asort; the median comes from sort -n.)
gaps() {
  local g; g=$(awk -v a="$2" -v b="$3" '/CNT=/ { t=$1+0; if (t>=a && t<=b) { if (p) print t-p; p=t } else if (t<a) p=t }' "$1" | sort -g)
  if [ -z "$g" ]; then printf 'no counter lines'; return; fi
  local n max med; n=$(printf '%s\n' "$g" | wc -l); max=$(printf '%s\n' "$g" | tail -1); med=$(printf '%s\n' "$g" | sed -n "$(( (n + 1) / 2 ))p")
  awk -v m="$max" -v d="$med" 'BEGIN { printf "%.0f ms (median gap %.0f ms)", m*1000, d*1000 }'
}

for who in $WHO; do
  for load in ${LOADS:-idle dirty}; do
    if [ $who = sharpvmm ]; then emu=$D/qemu-system-x86_64; acpi='<features><acpi/></features>'; else emu=/usr/bin/qemu-system-x86_64; acpi=''; fi
    name=sharpvmm-mig-bench-$who-$load; log=$D/$name-serial.log; rm -f $log $D/$name.save
    counter='n=0; while :; do echo CNT=$n; n=$((n+1)); usleep 10000; done'
    if [ $load = dirty ]; then cmd="while :; do yes abcdefghijklmnopqrstuvwxyz | dd of=/dev/shm/f bs=1M count=128 iflag=fullblock conv=notrunc 2>/dev/null; done & echo DIRTYING; $counter"
    else cmd=$counter; fi
    b64=$(printf '%s' "$cmd" | base64 -w0)
    qemu-img create -q -f qcow2 $D/$name.qcow2 64M; chmod 666 $D/$name.qcow2
    cat > $D/$name.xml <<XML
<domain type='qemu'><name>$name</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='microvm'>hvm</type><kernel>$D/vmlinuz</kernel><initrd>$D/initrd.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet sharpvmm.cmd=$b64</cmdline></os>$acpi
  <devices><emulator>$emu</emulator><controller type='usb' model='none'/>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$D/$name.qcow2'/><target dev='vda' bus='virtio'/><address type='virtio-mmio'/></disk>
    <serial type='pty'><log file='$log' append='on'/><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/></devices></domain>
XML
    $A create $D/$name.xml >/dev/null
    for _ in $(seq 1 1200); do grep -aq 'CNT=200' $log 2>/dev/null && break; sleep 0.2; done
    [ $load = dirty ] && sleep 5 # the dirtier has run a while
    stamp $log $D/$name.stamped & stamper=$!
    sleep 1
    t0=$(now); $A migrate --live --unsafe $name "$BURI" --migrateuri tcp://127.0.0.1 --listen-address 127.0.0.1; t1=$(now)
    sleep 2
    t2=$(now); $B save $name $D/$name.save >/dev/null; t3=$(now); $B restore $D/$name.save >/dev/null; t4=$(now)
    sleep 2
    pkill -P $stamper 2>/dev/null || true; kill $stamper 2>/dev/null || true; stamper=
    printf '%-8s %-5s migrate %.2f s, longest console gap %s | save %.2f s (%s), restore %.2f s, longest gap over save+restore %s\n' \
      $who $load "$(echo "$t1-$t0" | bc)" "$(gaps $D/$name.stamped $t0 "$(echo "$t1+1" | bc)")" \
      "$(echo "$t3-$t2" | bc)" "$(du -h $D/$name.save | cut -f1)" "$(echo "$t4-$t3" | bc)" "$(gaps $D/$name.stamped $t2 "$(echo "$t4+1" | bc)")"
    $B destroy $name >/dev/null
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
