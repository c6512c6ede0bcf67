#!/bin/sh
# scratchd: run the daemon with Debian's node. See scratchd(8).
# V8's young generation capped at 2 × 2 MiB (default 2 × 16): less peak RSS
# under load and shorter scavenges, for more of them at no measured cost in
# requests/s. One V8 worker thread instead of one per core, and two glibc
# malloc arenas instead of up to eight per core (librdkafka's, libuv's and
# V8's threads each got their own): a lower peak RSS again, at no measured
# cost (docs/decisions.md, "scratchd runs with --max-semi-space-size=2
# --v8-pool-size=1 and MALLOC_ARENA_MAX=2"; the figures are in
# BENCHMARKS.md; npm start and npm run bench start it the same way).
# An operator's own MALLOC_ARENA_MAX (Environment= in a drop-in) wins.
MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
export MALLOC_ARENA_MAX
exec /usr/bin/node --max-semi-space-size=2 --v8-pool-size=1 /usr/lib/scratchd/dist/main.js "$@"
