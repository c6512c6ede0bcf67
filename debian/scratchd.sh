#!/bin/sh
# scratchd: run the daemon with Debian's node. See scratchd(8).
# V8's young generation capped at 2 × 2 MiB (default 2 × 16): less peak RSS
# under load and shorter scavenges, for more of them at no measured cost in
# requests/s (README, Decisions, "scratchd runs with --max-semi-space-size=2"; the
# figures are in BENCHMARKS.md; npm start and npm run bench use the same flag).
exec /usr/bin/node --max-semi-space-size=2 /usr/lib/scratchd/dist/main.js "$@"
