#!/bin/sh
# Every test, as CI runs it (.ci/run) and as the README says: the suite inside
# the trixie chroot, then, on the host, the .deb booted under a real systemd
# (test/boot/systemd-boot-test). Root, from anywhere in the checkout; the
# checkout's sibling ../shared/trixie creates the chroot on first use.
# Both parts run even if the first fails; the exit status is 0 only if both pass.
set -u
cd "$(dirname "$0")/.."
status=0
# Entered from the checkout's parent, so that the chroot also mounts
# ../shared/clients (Matomo's tracker, read by the browser tier).
dir=$(pwd)
(cd .. && shared/trixie bash -c "cd '$dir' && npm ci && npm test") || status=1

out=$(mktemp -d /tmp/scratchd-boot-deb.XXXXXX)
trap 'rm -rf "$out"' EXIT
# The build tools, installed in the chroot when missing (the package test does too).
if deb=$(TRIXIE_PACKAGES="debhelper dpkg-dev fakeroot" ../shared/trixie scripts/build-deb.sh --out "$out" | tail -n 1) && [ -f "$deb" ]; then
	test/boot/systemd-boot-test "$deb" "${SCRATCHD_BOOT_PORT:-18090}" || status=1
else
	echo "scripts/build-deb.sh failed: no boot test" >&2
	status=1
fi
exit $status
