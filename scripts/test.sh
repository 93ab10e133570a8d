#!/usr/bin/env bash
# make test: every test, in phases that do not starve one another. The sanitized libFuzzer
# driver builds in the background while the debug build runs (the two overlap where one
# build leaves a core idle: linking, module waits), and is awaited before the real-process
# tests, so no node process shares the cores with a compiler.
set -euo pipefail
SWIFT=${SWIFT:-swift}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
mkdir -p .build-fuzz
make --no-print-directory fuzz-build >.build-fuzz/build.log 2>&1 &
fuzz_build=$!
trap 'kill $fuzz_build 2>/dev/null || true' EXIT
"$SWIFT" build --build-tests
# Unit tests first, then the simulation sweeps (CPU-heavy, parallel: a timed unit test
# starved behind them).
"$SWIFT" test --skip-build --skip DynamoIntegrationTests --skip DynamoSimulationTests
"$SWIFT" test --skip-build --filter DynamoSimulationTests
if ! wait $fuzz_build; then
  cat .build-fuzz/build.log
  echo "the libFuzzer driver did not build" >&2
  exit 1
fi
trap - EXIT
# The real-process tests alone and one at a time, so node processes never starve.
"$SWIFT" test --skip-build --no-parallel --filter DynamoIntegrationTests
make --no-print-directory fuzz-run FUZZ_SECONDS="$FUZZ_SECONDS"
