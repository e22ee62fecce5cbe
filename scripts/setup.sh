#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine for building, testing and running SharpVmm. Idempotent: a second run
# installs nothing and finishes in seconds.
#   - Debian packages: QEMU's tools (reference oracles in tests and benches), libvirt (tests of SharpVmm as
#     libvirt's emulator; scripts/libvirt-up.sh starts its daemons), gcc + kernel headers (KVM struct
#     layout probe; gcc and zlib1g-dev also link the native-AOT binary), busybox-static, cpio, acpica-tools, gdb
#     (the sandbox test makes a running VMM call execve through it); afl++ only for bench/fuzz.sh, which installs it;
#   - NuGet packages (dotnet restore);
#   - the guest kernel + initramfs (guest/setup.sh), when SHARPVMM_SKIP_GUEST is not set.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-utils qemu-system-x86 busybox-static gcc libc6-dev linux-libc-dev cpio acpica-tools zstd libzstd1 libslirp0 iproute2 iputils-ping e2fsprogs zlib1g-dev libvirt-daemon-system libvirt-clients gdb)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null; then
  echo "setup: the .NET 10 SDK is required (dotnet not found on PATH)" >&2
  exit 1
fi
dotnet restore SharpVmm.slnx --verbosity quiet

if [ -z "${SHARPVMM_SKIP_GUEST:-}" ] && [ -x guest/setup.sh ]; then
  guest/setup.sh
fi
