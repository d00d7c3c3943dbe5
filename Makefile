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

# Compile web/translations/*/LC_MESSAGES/messages.po to the .mo files the app loads
# (fails on a broken catalogue; fuzzy entries are never used).
translations: install
	$(VENV)/bin/pybabel -q compile -d web/translations

# Rebuild web/translations/messages.pot from engine/, web/ (Python and templates) and
# forms/ (see babel.cfg); the keywords are gettext and every engine.errors class whose
# first argument is a user-facing message.  PYTHONPATH lets babel.cfg load
# web.babel_forms.  Afterwards: $(VENV)/bin/pybabel update -i web/translations/messages.pot
# -d web/translations --no-fuzzy-matching, translate, then `make translations`.
.PHONY: extract
extract: install
	PYTHONPATH=. $(VENV)/bin/pybabel extract -F babel.cfg \
	    -k _ -k gettext -k lazy_gettext -k N_ \
	    -k Conflict -k NotFound -k Forbidden -k ValidationFailed -k NotAuthenticated \
	    -k BadInput -k EngineFailure -k DeployRefused -k BrandError \
	    --project=yingjiang-brand --version=1 -o web/translations/messages.pot .

# Create or upgrade the SQLite database under instance/, deploy bpmn/, seed the demo users.
db: install translations
	mkdir -p instance
	$(FLASK) db upgrade
	$(FLASK) deploy
	$(FLASK) seed-demo

run: db
	@echo "Open http://127.0.0.1:5000  (demo logins: market quality finance protection"
	@echo "leadership office service it general, ent-a ent-b ent-c; password: demo)"
	$(VENV)/bin/flask --app web.wsgi run --host 127.0.0.1 --port 5000 --no-reload

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

# Rebuild web/static/vendor/ (bpmn-js, dmn-js, echarts) from the npm registry; not part of any
# other target: the vendored files are committed and nothing is fetched at run time. Versions are
# pinned in web/static/src/package.json and package-lock.json; see web/static/vendor/VENDOR.md.
.PHONY: vendor
vendor:
	cd web/static/src && npm ci --no-audit --no-fund --ignore-scripts && node build.mjs

clean:
	rm -rf $(VENV) instance/*.sqlite
