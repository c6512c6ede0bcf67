#!/bin/sh
# Build the scratchd .deb from this checkout, in a copy under /tmp, so the
# checkout stays clean. Runs inside the trixie chroot, as root:
#
#   ../shared/trixie scripts/build-deb.sh [--version X.Y.Z] [--out DIR] [--conffile FILE] [--lintian]
#
# --version  build as this version (package.json and a debian/changelog
#            entry are changed in the copy only; the upgrade test uses it)
# --out      where the .deb goes (default: a new /tmp/scratchd-deb.* dir)
# --conffile ship this file as /etc/scratchd/config.json instead of
#            debian/config.json (the upgrade test changes the packaged
#            conffile to meet dpkg's conffile question)
# --lintian  run lintian on the result; its errors fail the build; its
#            output is also kept as lintian.txt in the --out directory
#
# The checkout's node_modules (npm ci in the chroot) is copied into the build
# tree when present, without node-rdkafka's librdkafka sources: debian/rules
# then reuses it instead of an `npm ci` that rebuilds librdkafka (minutes).
# Prints the .deb's path as the last line.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
version=
out=
conffile=
lintian=no
while [ $# -gt 0 ]; do
	case $1 in
	--version) version=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--conffile) conffile=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
	--lintian) lintian=yes; shift ;;
	*) echo "usage: $0 [--version X.Y.Z] [--out DIR] [--conffile FILE] [--lintian]" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d /tmp/scratchd-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree=$work/scratchd
mkdir "$tree"

# The source tree, without what building makes or what is not source.
tar -C "$src" -cf - \
	--exclude=./.git --exclude=./node_modules --exclude=./dist --exclude=./build \
	--exclude=./var --exclude=./.tap --exclude='./debian/scratchd' --exclude='./debian/.debhelper' \
	--exclude='./debian/files' --exclude='./debian/*.substvars' --exclude='./debian/*.log' \
	--exclude='./debian/debhelper-build-stamp' --exclude='./debian/tmp' . | tar -C "$tree" -xf -
if [ -d "$src/node_modules" ]; then
	tar -C "$src" -cf - --exclude=./node_modules/node-rdkafka/deps \
		--exclude=./node_modules/.cache ./node_modules | tar -C "$tree" -xf -
fi

if [ -n "$version" ]; then
	node -e '
		const fs = require("fs"), f = process.argv[1] + "/package.json";
		const p = JSON.parse(fs.readFileSync(f, "utf8"));
		p.version = process.argv[2];
		fs.writeFileSync(f, JSON.stringify(p, null, 2) + "\n");' "$tree" "$version"
	{
		printf 'scratchd (%s) trixie; urgency=medium\n\n  * Build %s (scripts/build-deb.sh --version).\n\n' "$version" "$version"
		printf ' -- scratchd maintainers <scratchd@example.gr>  %s\n\n' "$(date -R)"
		cat "$tree/debian/changelog"
	} > "$work/changelog"
	mv "$work/changelog" "$tree/debian/changelog"
fi

[ -z "$conffile" ] || cp "$conffile" "$tree/debian/config.json"

(cd "$tree" && dpkg-buildpackage -us -uc -b) >&2

deb=$(ls "$work"/scratchd_*.deb)
[ -n "$out" ] || out=$(mktemp -d /tmp/scratchd-deb.XXXXXX)
mkdir -p "$out"
if [ "$lintian" = yes ]; then
	# Also kept beside the .deb: the package test reads it when it is given
	# this .deb instead of building one (SCRATCHD_TEST_DEB).
	rc=0
	lintian --fail-on error --info "$work"/scratchd_*.changes >"$out/lintian.txt" 2>&1 || rc=$?
	cat "$out/lintian.txt" >&2
	[ $rc -eq 0 ] || exit $rc
fi
mv "$deb" "$out/"
echo "$out/$(basename "$deb")"
