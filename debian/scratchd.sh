#!/bin/sh
# scratchd: run the daemon with Debian's node. See scratchd(8).
exec /usr/bin/node /usr/lib/scratchd/dist/main.js "$@"
