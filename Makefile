# The two commands a newcomer needs:
#   make console   install missing system packages, build, start a local cluster
#   make test      install missing system packages, build, run every test
SHELL := /bin/bash
APT_PACKAGES := librocksdb-dev libssl-dev libncursesw5-dev libreadline-dev tmux pkg-config procps
SWIFT ?= swift
CONFIG ?= debug
NODES ?= 5

.PHONY: deps build release console cluster test test-fast fuzz fuzz-libfuzzer fuzz-build fuzz-run bench bench-compare bench-micro format clean

# Installs only what is missing; needs root (or sudo) the first time.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c $(CONFIG)

release: deps
	$(SWIFT) build -c release

# The main job: start a local cluster and open the console prompt on it
# (quit or Ctrl-C stops every node).
console: build
	.build/$(CONFIG)/dynamo console --nodes $(NODES)

# Every test in phases that do not starve one another (see scripts/test.sh).
test: deps
	SWIFT=$(SWIFT) scripts/test.sh

# The decoder fuzzers for longer than make test runs them (FUZZ_ITERATIONS inputs each).
FUZZ_ITERATIONS ?= 200000
fuzz: deps
	$(SWIFT) build --build-tests
	DYNAMO_FUZZ_ITERATIONS=$(FUZZ_ITERATIONS) $(SWIFT) test --skip-build --filter DynamoFuzzTests

# The same fuzz targets under libFuzzer (coverage-guided, with AddressSanitizer), for
# FUZZ_SECONDS; the corpus grows in .build-fuzz/corpus. A crash leaves its input in
# .build-fuzz/crash-*: replay it with `.build/debug/dynamo-fuzz FILE`.
FUZZ_SECONDS ?= 300
LIBFUZZER_FLAGS := -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLIBFUZZER -Xswiftc -parse-as-library
fuzz-libfuzzer: fuzz-build
	$(MAKE) --no-print-directory fuzz-run

fuzz-build: deps
	$(SWIFT) build --scratch-path .build-fuzz -c release --product dynamo-fuzz $(LIBFUZZER_FLAGS) 2>&1 \
	  | grep -v 'ld.gold: warning: Cannot export local symbol'; test $${PIPESTATUS[0]} -eq 0

fuzz-run:
	mkdir -p .build-fuzz/corpus
	.build-fuzz/release/dynamo-fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	  -artifact_prefix=.build-fuzz/ -print_final_stats=1 .build-fuzz/corpus 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss|==|SUMMARY|Done)' ; \
	  test $${PIPESTATUS[0]} -eq 0

bench: release
	.build/release/dynamo bench

# The same wrk load against a 3-node etcd and a 3-node cluster of this project, one
# table with the ratios (installs etcd-server and wrk if missing; see scripts/bench-compare.sh).
bench-compare: release
	scripts/bench-compare.sh

# Micro-benchmarks of the core's hot paths with allocations per operation (ordo-one
# package-benchmark, in a package of its own so that tests never build it).
bench-micro: deps
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build
