# SocialITSM: `make run` starts the demo on a fresh machine, `make test` runs the suite.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements.txt.stamp
PORT ?= 8000
ARGS ?=
BENCH ?= ingest

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench clean

help:
	@echo "make run     set up .venv and .env, migrate, load the demo, start web + worker + beat on http://127.0.0.1:$(PORT)/"
	@echo "make test    run the test suite (extra pytest arguments: ARGS=\"-k ingest\")"
	@echo "make lint    ruff check, ruff format --check, mypy"
	@echo "make bench   run bench/ingest.py (BENCH=classify runs bench/classify.py; arguments: ARGS=...)"
	@echo "make clean   remove var/ and .venv"

venv: $(STAMP)

# Reinstalls only when requirements.txt changes.
$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# Written once, never overwritten: it holds the key that decrypts stored credentials.
.env: | $(STAMP)
	@$(BIN)/python -c 'import secrets; from cryptography.fernet import Fernet; \
	print("DEBUG=1"); print("SOCIALITSM_DEMO=1"); \
	print("SECRET_KEY=" + secrets.token_urlsafe(50)); \
	print("SOCIALITSM_ENCRYPTION_KEYS=" + Fernet.generate_key().decode())' > $@.tmp
	@mv $@.tmp $@
	@echo "wrote .env (DEBUG=1, SOCIALITSM_DEMO=1, a new SECRET_KEY and encryption key)"

run: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py socialitsm_demo --url http://127.0.0.1:$(PORT)/ --login-file var/demo-login.txt
	@echo "Starting web, worker and beat; the login above is printed again once they run. Ctrl-C stops them all."
	@PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/honcho start --env /dev/null --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/$(BENCH).py $(ARGS)

clean:
	rm -rf var $(VENV)
