#!/usr/bin/env bash
# make test: every test, in phases that do not starve one another. Unit tests first, then
# the CPU-heavy simulation sweeps on their own (a timed unit test starved behind them),
# then the real-process tests alone and one at a time, so node processes never starve.
# Those mostly wait on the network, so the sanitized libFuzzer driver builds meanwhile at
# the lowest priority (nice 19: it takes only the cores the nodes leave idle), and a 15 s
# libFuzzer run ends the suite.
set -euo pipefail
SWIFT=${SWIFT:-swift}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
"$SWIFT" build --build-tests
"$SWIFT" test --skip-build --skip DynamoIntegrationTests --skip DynamoSimulationTests
"$SWIFT" test --skip-build --filter DynamoSimulationTests
mkdir -p .build-fuzz
set -m # its own process group, so a failing test stops the whole build
nice -n 19 make --no-print-directory fuzz-build SWIFT="$SWIFT" >.build-fuzz/build.log 2>&1 &
fuzz_build=$!
set +m
trap 'kill -- -$fuzz_build 2>/dev/null || true' EXIT
"$SWIFT" test --skip-build --no-parallel --filter DynamoIntegrationTests
if ! wait $fuzz_build; then
  cat .build-fuzz/build.log
  echo "the libFuzzer driver did not build" >&2
  exit 1
fi
trap - EXIT
make --no-print-directory fuzz-run FUZZ_SECONDS="$FUZZ_SECONDS"
