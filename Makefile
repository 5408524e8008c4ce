# ferrowall: `make demo` runs the appliance in a lab it builds; `make test` runs every test.
# Both install what is missing first (scripts/install-deps, as root).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build release test lint miri demo bench icount fuzz soak install clean

all: build

deps:
	./scripts/install-deps

build: deps
	$(CARGO) build --workspace --all-targets

release: deps
	$(CARGO) build --release -p control -p perf

# Everything CI checks: formatting, lints, all tests (unit, property, integration, lab), and
# Miri over the FQDN table code.
test: deps lint
	$(CARGO) test --workspace --no-fail-fast
	$(MAKE) miri

# The FQDN publication and reclamation code's unit tests under Miri (nightly).
miri:
	./scripts/install-toolchain miri rust-src
	MIRIFLAGS="-Zmiri-strict-provenance" $(CARGO) +nightly miri test -p dataplane --lib fqdn

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

demo: release
	./scripts/demo

# The benchmarks of perf/, written to perf/RESULTS.md (several minutes; not part of `make test`).
bench: release
	$(CARGO) run -p perf --release -- all

# Instructions per packet counted by callgrind (noise-free, about 3 minutes; not part of
# `make test`).
icount: deps
	./scripts/icount

# Long fuzzing runs (FUZZ_SECONDS per target, default 120); `make test` only replays the corpora.
fuzz: deps
	./scripts/fuzz

# The incident test for SOAK_SECONDS (default 300), plain and under ThreadSanitizer and
# AddressSanitizer (nightly); `make test` runs it for 3 s.
soak: deps
	./scripts/soak

# Installs the binary, the systemd unit and an example configuration (PREFIX, DESTDIR).
PREFIX ?= /usr/local
install: release
	install -D -m 0755 target/release/ferrowall $(DESTDIR)$(PREFIX)/bin/ferrowall
	install -d -m 0755 $(DESTDIR)/etc/systemd/system $(DESTDIR)$(PREFIX)/share/doc/ferrowall
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@DOCDIR@|$(PREFIX)/share/doc/ferrowall|g' \
		packaging/ferrowall.service > $(DESTDIR)/etc/systemd/system/ferrowall.service
	install -m 0644 README.md docs/config.md $(DESTDIR)$(PREFIX)/share/doc/ferrowall/
	install -D -m 0600 examples/two-port-nic.toml $(DESTDIR)/etc/ferrowall/ferrowall.toml.example

clean:
	$(CARGO) clean
