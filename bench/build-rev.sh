#!/bin/sh
# Build scratchd as of git revision REV into /tmp/scratchd-rev-REV (dist/,
# package.json, config.schema.json; node_modules and build/, the native
# addon, linked), for before/after
# comparisons in one benchmark run:
#   bench/build-rev.sh REV      (on the host: uses git)
#   ../shared/trixie node bench/run.mjs --baseline /tmp/scratchd-rev-REV
set -e
rev=$(git rev-parse --short "$1")
out=/tmp/scratchd-rev-$rev
rm -rf "$out"
mkdir -p "$out"
git archive "$rev" src package.json config.schema.json tsconfig.json | tar -x -C "$out"
ln -s "$(pwd)/node_modules" "$out/node_modules"
ln -s "$(pwd)/build" "$out/build"
echo "$out"
