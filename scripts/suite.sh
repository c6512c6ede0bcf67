#!/bin/sh
# npm test: build, typecheck, then every test file. The long Kafka outage
# (test/system/kafka-long-outage.test.ts) must outlast librdkafka's default
# message timeout of five minutes and spends them waiting, so it runs from
# the start beside the two tiers instead of inside the last one. Every part
# runs even if another fails; the status is 0 only if all pass.
set -u
npm run build || exit 1
# tap compiles its test class for the plugins package.json names (tsx in place
# of ts-node) on first use: once here, beside the typecheck, not by the two tap
# runs below at once.
npm run test:types &
types=$!
tap build >/dev/null || exit 1
wait $types || exit 1
long=test/system/kafka-long-outage.test.ts
mkdir -p .tap
tap "$long" >.tap/long-outage.out 2>&1 &
pid=$!
status=0
tap --jobs=3 test/unit test/e2e || status=1
tap --jobs=4 --exclude="**/kafka-long-outage.test.ts" test/system || status=1
wait $pid || status=1
echo "# $long (run beside the tiers):"
cat .tap/long-outage.out
exit $status
