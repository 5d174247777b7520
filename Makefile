# Kemari for QEMU 10.0: fetch the base, apply the series, build, test, demo.
# See README.md.  Every target installs what it needs (run as root on a
# fresh Debian 12/13 machine).

.PHONY: all deps base tree tree-reset export build check test checkpatch \
        bisect demo guest e2e clean distclean help

all: build

help:
	@echo "make demo        the main job: the real guest under load, migrated (FT when it lands)"
	@echo "make check       the whole test suite (what CI runs)"
	@echo "make tree        development tree build/qemu = base + patches/"
	@echo "make export      write build/qemu's commits back into patches/"
	@echo "make tree-reset  rebuild build/qemu from base + patches/ (drops tree commits)"
	@echo "make build       incremental build of QEMU and the tests we run"
	@echo "make checkpatch  scripts/checkpatch.pl on every patch"
	@echo "make bisect      build every prefix of the series"
	@echo "make stress      the FT tests 5 times beside two busy loops (not in CI)"
	@echo "make bench       FT benchmark against live migration (bench/)"
	@echo "make bench-postcopy  postcopy against precopy on a guest that dirties memory fast"
	@echo "make bench-templates VM template clones against a cold boot (start time, PSS)"
	@echo "make bench-vmstate   x-vmstate-cycle pause per iteration against stop + cont"
	@echo "make bench-devices   instructions of a device state save (callgrind), base vs series"
	@echo "make bench-seeds live update and save/restore with x-ignore-shared against"
	@echo "                 live migration and save/restore with the RAM in the stream"

deps:
	scripts/deps.sh

base: deps
	scripts/fetch-base.sh

tree: deps
	scripts/tree.sh

tree-reset: deps
	scripts/tree.sh --force

export:
	scripts/export.sh

build: tree
	scripts/build.sh

guest: deps
	tests/e2e/guest/build-guest.sh build/e2e/guest

check test:
	scripts/test.sh

checkpatch: tree
	scripts/checkpatch.sh

bisect: build
	scripts/bisect.sh

e2e: build guest
	python3 tests/e2e/harness.py selftest
	python3 tests/e2e/harness.py migrate

demo: build guest
	python3 tests/e2e/harness.py demo

clean:
	rm -rf build/qemu/build build/e2e/runs build/test-logs

distclean:
	rm -rf build

.PHONY: stress
stress: build guest
	scripts/stress.sh

.PHONY: bench
bench: build guest
	python3 bench/ft-bench.py

.PHONY: bench-seeds
bench-seeds: build guest
	python3 bench/seeds-bench.py

.PHONY: bench-postcopy bench-templates
bench-postcopy: build guest
	python3 bench/postcopy-bench.py

bench-templates: build guest
	python3 bench/template-bench.py

.PHONY: bench-vmstate
bench-vmstate: build guest
	python3 bench/vmstate-cycle-bench.py

.PHONY: bench-devices
bench-devices: build
	bench/devices-save-bench.sh
