# Everything runs from a project-local virtualenv so a fresh machine needs only Python 3.11 and pip.
# Every package comes pinned from requirements.lock (product + dev + tools extras); `make lock`
# re-resolves it from pyproject.toml, and requirements-prod.lock (what ships) with the same versions.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PROD_LOCK := requirements-prod.lock
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --python-version 3.11 --custom-compile-command "make lock" -q

.PHONY: install lock run test campaign lint typecheck browser fonts bench chaos clean

# The project itself goes in without its dependencies: they are exactly the lock's. `pip check`
# fails when pyproject.toml names a package the lock lacks (run `make lock`).
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

# Re-resolve after editing dependencies in pyproject.toml (UPGRADE=1 moves every pin to the newest allowed).
lock:
	test -x $(BIN)/uv || { test -x $(BIN)/python || $(PY) -m venv $(VENV); $(BIN)/python -m pip install -q "$$(grep -E '^uv==' $(LOCK))"; }
	$(UV_COMPILE) --extra dev --extra tools $(if $(UPGRADE),--upgrade) -o $(LOCK)
	$(UV_COMPILE) -c $(LOCK) -o $(PROD_LOCK)

run: $(STAMP)
	PORTALPAY_ENV=dev $(BIN)/portalpay dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy domain workflows activities workers starters infra sandbox_processor tools tests

# Browser tests drive Debian's chromium through the Python playwright package (no browser download).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
				|| echo "chromium could not be installed: browser tests will be skipped"; \
		else echo "no chromium and no root apt-get: browser tests will be skipped"; fi; \
	fi

# The NACHA tests upload to a real OpenSSH sshd on loopback (tests/bank_direct/sshd.py), never a mock.
.PHONY: sshd
test: sshd
sshd:
	@if [ ! -x /usr/sbin/sshd ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null) \
				|| { echo "openssh-server could not be installed: the NACHA SFTP tests cannot run"; exit 1; }; \
		else echo "no /usr/sbin/sshd and no root apt-get: install openssh-server for the NACHA SFTP tests"; exit 1; fi; \
	fi

# The proof of authorization PDF draws masked destinations ("•") with DejaVu (infra/proof_pdf.py).
fonts:
	@if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null) \
				|| echo "fonts-dejavu-core could not be installed: proof PDFs fall back to core fonts"; \
		else echo "no DejaVu font and no root apt-get: proof PDFs fall back to core fonts"; fi; \
	fi

# The suite's seed, chosen once per `make` (pass SEED=… to replay a run): pytest seeds `random` from it
# and the short campaign takes it as its own. Both print it at their end.
SEED := $(or $(SEED),$(shell $(PY) -c 'import secrets; print(secrets.randbits(31) | 1)'))
# Three workers on two cores (every session fixture, PostgreSQL and Temporal included, exists once per
# worker): a third of the suite's time is tests waiting on a server, a browser or a subprocess, which
# a third worker fills. Work stealing: an idle worker takes tests queued on a busy one, so the run
# does not end waiting on one worker's tail. Measured in docs/test-suite.md.
PYTEST_PARALLEL ?= -n 3 --dist worksteal

# -rs: every skipped test is listed with its reason. The last lines name the 15 slowest tests and the
# seed. The short campaign is its own step (`make campaign`), run beside this one by .ci/run.
test: $(STAMP) lint typecheck browser fonts
	@status=0; $(BIN)/python -m pytest -q -rs -p no:cacheprovider $(PYTEST_PARALLEL) -m "not campaign" \
		--durations=15 --durations-min=0 --seed $(SEED) $(PYTEST_ARGS) || status=$$?; \
	if [ ! -x /usr/bin/chromium ]; then echo "NOTE: no Chromium could be installed here: the browser tests (tests/portal/test_browser.py) were skipped"; fi; \
	echo "make test: seed $(SEED) (replay: make test SEED=$(SEED))"; \
	exit $$status

# The fault campaign, shortened (tests/campaign/test_short_campaign.py): its own PostgreSQL, Temporal
# server, worker and portal, so it runs beside `make test` (.ci/run does) and shares nothing with it.
campaign: $(STAMP)
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider -m campaign --seed $(SEED) tests/campaign/test_short_campaign.py

bench: $(STAMP)
	$(BIN)/python -m tools.bench $(or $(BENCH_ARGS),--parked 2000)

chaos: $(STAMP)
	$(BIN)/python -m tools.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .portalpay .pytest_cache .mypy_cache
