#!/bin/sh
# Every test, as CI runs it (.ci/run) and as the README's Quick start says: the suite inside
# the trixie chroot and, at the same time on the host, the .deb booted under a
# real systemd (test/boot/systemd-boot-test). Root, from anywhere in the
# checkout; the shared tools' trixie (scripts/shared finds them: beside the
# checkout, or beside the one it was cloned from) creates the chroot on first
# use. Both parts run even if one fails; the exit status is 0 only if both
# pass.
#
# The .deb is built once, after `npm ci` and beside the suite: the package
# test (test/system/debian-package.test.ts, through SCRATCHD_TEST_DEB) and the
# boot test both use that file.
set -u
cd "$(dirname "$0")/.."
status=0
shared=$(scripts/shared) || exit 1
dir=$(pwd)
out=$(mktemp -d /tmp/scratchd-deb.XXXXXX) # the host's /tmp is the chroot's too
boot_log=$out/deb-and-boot.log
trap 'rm -rf "$out"' EXIT
# Matomo's tracker for the browser tier, where the chroot sees it whatever
# directory the checkout and the shared tools are in.
cp "$shared/clients/matomo.js" "$out/matomo.js" || exit 1
export SCRATCHD_MATOMO_JS=$out/matomo.js
# Every tool the suite needs, installed in the chroot in one step before the
# suite (trixie installs the missing ones, once; apt's output goes to a log):
# building the .deb and the package test (debhelper, dpkg-dev, fakeroot,
# lintian, systemd), ccache for npm ci, the Kafka broker (Java, Maven), the
# browser tier (chromium and an emoji font), HAProxy, faketime for clocks that
# cross midnight, script(1) for the recovery commands' terminal, a real
# Carbon (graphite-carbon, python3-whisper) for stats.graphite. No test file
# installs anything: a test whose tool is missing fails.
export TRIXIE_PACKAGES="ccache debhelper dpkg-dev fakeroot lintian systemd default-jre-headless maven chromium fonts-noto-color-emoji haproxy faketime bsdutils graphite-carbon python3-whisper"
tools="java mvn chromium haproxy faketime script lintian dpkg-buildpackage systemd-analyze systemd-socket-activate ccache carbon-cache whisper-fetch"
chroot_run() { "$shared/trixie" bash -c "$1"; }
tools_log=$out/tools.log
if ! chroot_run "for t in $tools; do command -v \$t >/dev/null || { echo \"missing after install: \$t\"; exit 1; }; done" >"$tools_log" 2>&1; then
	tail -n 40 "$tools_log" >&2
	echo "installing the suite's tools failed (the log's tail above): no suite" >&2
	exit 1
fi

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
# The .deb, built beside the suite's first tiers (build, typecheck, unit and
# e2e take longer); the package test waits for it, or for $deb.failed.
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
deb=$out/scratchd_${version}_$(dpkg --print-architecture).deb
(
	if chroot_run "scripts/build-deb.sh --lintian --out '$out' >'$out/deb-path'" &&
		[ "$(tail -n 1 "$out/deb-path")" = "$deb" ] && [ -f "$deb" ]; then
		# Then the boot test on the host, beside the suite: it mostly waits on
		# a booting systemd. It copies the chroot under the package test's
		# lock, so the copy never holds what that test installs there.
		test/boot/systemd-boot-test "$deb" "${SCRATCHD_BOOT_PORT:-18090}"
	else
		touch "$deb.failed"
		echo "scripts/build-deb.sh failed (or not $deb): no boot test" >&2
		exit 1
	fi
) >"$boot_log" 2>&1 &
boot=$!
# tap keeps each file's TAP here; scripts/check-suite.mjs reads it afterwards.
rm -rf .tap/test-results
SCRATCHD_TEST_DEB=$deb chroot_run "npm test" || status=1
if wait $boot; then boot_result=pass; else boot_result="failed (its log above)"; status=1; fi
cat "$boot_log"
# Every test file ran, none skipped or empty; the closing line counts them all.
SCRATCHD_BOOT_RESULT=$boot_result chroot_run "node scripts/check-suite.mjs" || status=1
exit $status
