# ferrowall: `make demo` runs the appliance in a lab it builds; `make test` runs every test.
# Both install what is missing first (scripts/install-deps, as root).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build release test lint demo bench fuzz clean

all: build

deps:
	./scripts/install-deps

build: deps
	$(CARGO) build --workspace --all-targets

release: deps
	$(CARGO) build --release -p control -p perf

# Everything CI checks: formatting, lints, and all tests (unit, property, integration, lab).
test: deps lint
	$(CARGO) test --workspace --no-fail-fast

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

demo: release
	./scripts/demo

# The benchmarks of perf/, written to perf/RESULTS.md (several minutes; not part of `make test`).
bench: release
	$(CARGO) run -p perf --release -- all

# Long fuzzing runs (FUZZ_SECONDS per target, default 120); `make test` only replays the corpora.
fuzz: deps
	./scripts/fuzz

clean:
	$(CARGO) clean
