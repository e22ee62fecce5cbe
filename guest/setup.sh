#!/usr/bin/env bash
# Fetches the test/demo guest (guest/fetch.sh) and builds its initramfs (initrd.gz) in the guest dir with
# `sharpvmm guest build-initramfs`. Idempotent: the initramfs is rebuilt only when it is missing or older
# than the fetched packages or the init script.
#
# Usage: guest/setup.sh [--guest-dir DIR]
# Uses $SHARPVMM (path to a built sharpvmm binary) when set, else `dotnet run --project src/SharpVmm.Cli`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
guest_dir="${SHARPVMM_GUEST_DIR:-$HOME/.cache/sharpvmm/guest}"
while [ $# -gt 0 ]; do
    case "$1" in
        --guest-dir) guest_dir="$2"; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

"$here/fetch.sh" --guest-dir "$guest_dir"

initrd="$guest_dir/initrd.gz"
# The module list lives in code (GuestInitramfs.cs): a change there needs a new initramfs too.
modules_list="$repo/src/SharpVmm.Boot/Initramfs/GuestInitramfs.cs"
if [ -s "$initrd" ] && [ "$initrd" -nt "$guest_dir/packages" ] && [ "$initrd" -nt "$here/init" ] && [ "$initrd" -nt "$modules_list" ]; then
    echo "setup.sh: $initrd is up to date" >&2
    exit 0
fi

if [ -n "${SHARPVMM:-}" ]; then
    "$SHARPVMM" guest build-initramfs --guest-dir "$guest_dir" --init "$here/init" -o "$initrd"
else
    dotnet run --project "$repo/src/SharpVmm.Cli" -- guest build-initramfs --guest-dir "$guest_dir" --init "$here/init" -o "$initrd"
fi
