#!/usr/bin/env bash
# make test: every test, in phases that do not starve one another. Unit tests first, then
# the CPU-heavy simulation sweeps on their own (a timed unit test starved behind them),
# then the real-process tests alone and one at a time, so node processes never starve
# behind a compiler or a simulation, then the sanitized libFuzzer driver's build and a
# 15 s run. (Building the driver alongside the debug build, or at nice 19 during the
# real-process tests, was tried: both builds saturate the 2 cores, and the nodes' timing
# suffered.)
set -euo pipefail
SWIFT=${SWIFT:-swift}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
"$SWIFT" build --build-tests
"$SWIFT" test --skip-build --skip DynamoIntegrationTests --skip DynamoSimulationTests
"$SWIFT" test --skip-build --filter DynamoSimulationTests
"$SWIFT" test --skip-build --no-parallel --filter DynamoIntegrationTests
make --no-print-directory fuzz-libfuzzer SWIFT="$SWIFT" FUZZ_SECONDS="$FUZZ_SECONDS"
