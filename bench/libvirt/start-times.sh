#!/usr/bin/env bash
# libvirt with SharpVmm beside libvirt with QEMU (TCG), same microvm domain (qcow2 disk, user NIC, pty serial logged
# through virtlogd): the capability probe (touch the emulator, virsh domcapabilities), virsh start -> running, and
# start -> the guest's first line of its own output. By hand, as root, after scripts/setup.sh and scripts/publish.sh;
# starts the daemons with scripts/libvirt-up.sh. QEMU's domain has no <acpi/> (QEMU's microvm with ACPI hangs
# under TCG, see ../shared/LIBVIRT.md); SharpVmm's needs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/libvirt-up.sh
V="virsh -c qemu:///system"
D=/var/lib/libvirt/sharpvmm-bench
mkdir -p $D
cp artifacts/bin/sharpvmm $D/sharpvmm.new && mv $D/sharpvmm.new $D/sharpvmm
ln -sf sharpvmm $D/qemu-system-x86_64
G=${SHARPVMM_GUEST_DIR:-$HOME/.cache/sharpvmm/guest}
cp "$G/vmlinuz" "$G/initrd.gz" $D/
CMD=$(printf 'echo hello-from-guest; sleep 600' | base64 -w0)
now() { date +%s.%N; }
for who in sharpvmm qemu; do
  if [ $who = sharpvmm ]; then emu=$D/qemu-system-x86_64; acpi='<features><acpi/></features>'; else emu=/usr/bin/qemu-system-x86_64; acpi=''; fi
  name=bench-$who; log=/var/log/libvirt/qemu/$name-serial.log
  qemu-img create -q -f qcow2 $D/$name.qcow2 64M
  cat > $D/$name.xml <<XML
<domain type='qemu'><name>$name</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='microvm'>hvm</type><kernel>$D/vmlinuz</kernel><initrd>$D/initrd.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 sharpvmm.cmd=$CMD</cmdline></os>$acpi
  <devices><emulator>$emu</emulator><controller type='usb' model='none'/>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$D/$name.qcow2'/><target dev='vda' bus='virtio'/><address type='virtio-mmio'/></disk>
    <interface type='user'><model type='virtio'/><address type='virtio-mmio'/></interface>
    <serial type='pty'><log file='$log' append='off'/><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/></devices></domain>
XML
  $V destroy $name >/dev/null 2>&1 || true; $V undefine $name >/dev/null 2>&1 || true; rm -f $log
  touch -h $emu; t0=$(now); $V domcapabilities --emulatorbin $emu --virttype qemu >/dev/null; t1=$(now)
  $V define $D/$name.xml >/dev/null
  t2=$(now); $V start $name >/dev/null; t3=$(now)
  for _ in $(seq 1 600); do grep -aq hello-from-guest $log 2>/dev/null && break; sleep 0.2; done; t4=$(now)
  $V destroy $name >/dev/null; t5=$(now); $V undefine $name >/dev/null
  printf '%-8s probe %.2f s   start->running %.2f s   start->guest output %.1f s   destroy %.2f s\n' $who \
    "$(echo "$t1-$t0" | bc)" "$(echo "$t3-$t2" | bc)" "$(echo "$t4-$t2" | bc)" "$(echo "$t5-$t4" | bc)"
done
