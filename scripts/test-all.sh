#!/bin/sh
# Every test, as CI runs it (.ci/run) and as the README says: the suite inside
# the trixie chroot and, at the same time on the host, the .deb booted under a
# real systemd (test/boot/systemd-boot-test). Root, from anywhere in the
# checkout; the checkout's sibling ../shared/trixie creates the chroot on
# first use. Both parts run even if one fails; the exit status is 0 only if
# both pass.
#
# The .deb is built once, right after `npm ci`: the package test
# (test/system/debian-package.test.ts, through SCRATCHD_TEST_DEB) and the boot
# test both use that file.
set -u
cd "$(dirname "$0")/.."
status=0
# Entered from the checkout's parent, so that the chroot also mounts
# ../shared/clients (Matomo's tracker, read by the browser tier).
dir=$(pwd)
out=$(mktemp -d /tmp/scratchd-deb.XXXXXX) # the host's /tmp is the chroot's too
boot_log=$out/boot.log
trap 'rm -rf "$out"' EXIT
# What building the .deb (and the package test) needs, and ccache: installed
# in the chroot once, when missing.
export TRIXIE_PACKAGES="ccache debhelper dpkg-dev fakeroot lintian systemd"
chroot_run() { (cd .. && shared/trixie bash -c "cd '$dir' && $1"); }

# npm ci is mostly node-rdkafka compiling its bundled librdkafka: through
# ccache (Debian's compiler links in /usr/lib/ccache; the cache stays in the
# chroot, /var/cache/scratchd-ccache) and librdkafka's make on every core
# (scripts/submake/make says why only that one). Same compiler, same flags,
# same objects: a hit returns what the compiler made for the same input.
npm_ci="export PATH=/usr/lib/ccache:$dir/scripts/submake:\$PATH CCACHE_DIR=/var/cache/scratchd-ccache && npm ci"
if ! chroot_run "$npm_ci"; then
	echo "npm ci failed: no suite, no boot test" >&2
	exit 1
fi
deb=
if chroot_run "scripts/build-deb.sh --lintian --out '$out' >'$out/deb-path'"; then
	deb=$(tail -n 1 "$out/deb-path")
fi

boot=
if [ -n "$deb" ] && [ -f "$deb" ]; then
	# The boot test on the host beside the suite: it mostly waits on a booting
	# systemd. It copies the chroot under the package test's lock, so the copy
	# never holds what that test installs there.
	test/boot/systemd-boot-test "$deb" "${SCRATCHD_BOOT_PORT:-18090}" >"$boot_log" 2>&1 &
	boot=$!
	export SCRATCHD_TEST_DEB="$deb"
else
	echo "scripts/build-deb.sh failed: no boot test (the package test builds its own)" >&2
	status=1
fi
chroot_run "npm test" || status=1
if [ -n "$boot" ]; then
	wait $boot || status=1
	cat "$boot_log"
fi
exit $status
