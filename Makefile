# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app web
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres test-browser install db translations bench lint clean

$(VENV)/installed: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/installed

translations: install
	$(VENV)/bin/pybabel compile -q -d web/translations

# Create or upgrade the SQLite database under instance/, deploy bpmn/, seed the demo users.
db: install translations
	mkdir -p instance
	$(FLASK) db upgrade
	$(FLASK) deploy
	$(FLASK) seed-demo

run: db
	@echo "Open http://127.0.0.1:5000  (demo logins: market quality finance protection"
	@echo "leadership office service it, ent-a ent-b; password: demo)"
	$(FLASK) run --host 127.0.0.1 --port 5000 --no-reload

# The test suite on SQLite (the default), the way CI runs it first.
test: install translations
	$(PY) -m pytest -q

test-postgres: install translations
	BRAND_TEST_DATABASE_URL=$(PG_URL) $(PY) -m pytest -q

test-browser: install translations
	BRAND_BROWSER_TESTS=1 $(PY) -m pytest -q tests/browser

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check engine web config tests bench

clean:
	rm -rf $(VENV) instance/*.sqlite
