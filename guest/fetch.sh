#!/usr/bin/env bash
# Fetches the SharpVmm test/demo guest from Debian packages: the kernel that
# linux-image-cloud-amd64 currently depends on, and busybox-static.
# Nothing is installed: the .debs are downloaded and unpacked with dpkg -x.
#
# Result in the guest dir (default ${SHARPVMM_GUEST_DIR:-$HOME/.cache/sharpvmm/guest}):
#   vmlinuz  System.map  config  busybox  modules/  kernel-version  packages
# Idempotent: does nothing when the guest dir already holds the current package versions.
#
# Usage: guest/fetch.sh [--guest-dir DIR]
set -euo pipefail

guest_dir="${SHARPVMM_GUEST_DIR:-$HOME/.cache/sharpvmm/guest}"
while [ $# -gt 0 ]; do
    case "$1" in
        --guest-dir) guest_dir="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "fetch.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

log() { echo "fetch.sh: $*" >&2; }
die() { echo "fetch.sh: error: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg dpkg-deb; do
    command -v "$tool" >/dev/null || die "'$tool' not found: this script needs a Debian (bookworm) host"
done

# apt-cache knows nothing until the package lists exist (fresh containers ship without them).
lists_dir=/var/lib/apt/lists/
eval "$(apt-config shell lists_dir Dir::State::lists/d)"
if ! compgen -G "${lists_dir%/}/*_Packages*" >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "apt package lists are missing and only root can run 'apt-get update'; run it once, then retry"
    log "apt package lists missing, running apt-get update"
    apt-get update -q >&2
fi

# The meta package points at the current ABI package, e.g. linux-image-6.1.0-56-cloud-amd64.
# (Outputs are captured before parsing: with pipefail, a reader that stops early could fail the pipeline.)
deps="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null || true)"
kernel_pkg="$(sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[^ <>]*\)$/\1/p' <<<"$deps" | sed -n 1p)"
[ -n "$kernel_pkg" ] || die "cannot resolve the kernel package of linux-image-cloud-amd64 (is the 'main' component of bookworm in sources.list?)"

candidate() {
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null || true)"
    sed -n 's/^ *Candidate: //p' <<<"$policy" | sed -n 1p
}
kernel_ver="$(candidate "$kernel_pkg")"
busybox_ver="$(candidate busybox-static)"
[ -n "$kernel_ver" ] && [ "$kernel_ver" != "(none)" ] || die "no installable version of $kernel_pkg"
[ -n "$busybox_ver" ] && [ "$busybox_ver" != "(none)" ] || die "no installable version of busybox-static"

wanted="$kernel_pkg=$kernel_ver
busybox-static=$busybox_ver"

complete() {
    [ -f "$guest_dir/packages" ] && [ "$(cat "$guest_dir/packages")" = "$wanted" ] || return 1
    for f in vmlinuz System.map config busybox kernel-version; do [ -s "$guest_dir/$f" ] || return 1; done
    [ -d "$guest_dir/modules/kernel" ] || return 1
}

if complete; then
    log "up to date in $guest_dir ($kernel_pkg $kernel_ver, busybox-static $busybox_ver)"
    exit 0
fi

mkdir -p "$guest_dir"
work="$(mktemp -d "$guest_dir/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "downloading $kernel_pkg=$kernel_ver and busybox-static=$busybox_ver"
# apt-get download writes into the current directory, which the _apt sandbox user may not reach
# (e.g. under /root): download as the calling user instead.
(cd "$work" && apt-get download -q -o APT::Sandbox::User="$(id -un)" \
    "$kernel_pkg=$kernel_ver" "busybox-static=$busybox_ver" >&2) \
    || die "apt-get download failed (network or mirror problem?)"

mkdir "$work/root"
for deb in "$work"/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" >/dev/null || die "corrupt package $deb"
    dpkg -x "$deb" "$work/root"
done

modules_parent="$work/root/lib/modules"
[ -d "$modules_parent" ] || modules_parent="$work/root/usr/lib/modules"
versions=("$modules_parent"/*)
[ ${#versions[@]} -eq 1 ] && [ -d "${versions[0]}" ] || die "expected exactly one lib/modules/<version> tree in $kernel_pkg"
kversion="$(basename "${versions[0]}")"

stage="$work/stage"
mkdir "$stage"
cp "$work/root/boot/vmlinuz-$kversion" "$stage/vmlinuz" || die "no boot/vmlinuz-$kversion in $kernel_pkg"
cp "$work/root/boot/System.map-$kversion" "$stage/System.map" || die "no boot/System.map-$kversion in $kernel_pkg"
cp "$work/root/boot/config-$kversion" "$stage/config" || die "no boot/config-$kversion in $kernel_pkg"
bb="$work/root/bin/busybox"
[ -f "$bb" ] || bb="$work/root/usr/bin/busybox"
[ -f "$bb" ] || die "no bin/busybox in busybox-static"
cp "$bb" "$stage/busybox"
chmod 0755 "$stage/busybox"
mv "${versions[0]}" "$stage/modules"
echo "$kversion" > "$stage/kernel-version"
printf '%s\n' "$wanted" > "$stage/packages"

# Replace the old entries; 'packages' goes last so an interrupted run is never taken as complete.
rm -f "$guest_dir/packages"
for f in vmlinuz System.map config busybox kernel-version; do mv -f "$stage/$f" "$guest_dir/$f"; done
rm -rf "$guest_dir/modules"
mv "$stage/modules" "$guest_dir/modules"
mv "$stage/packages" "$guest_dir/packages"

log "guest kernel $kversion ready in $guest_dir"
