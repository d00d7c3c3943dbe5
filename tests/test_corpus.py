"""BPMN written by others: each file deploys and starts, or is refused naming element and line."""

from pathlib import Path

import pytest

from engine import deploy, runtime, services
from engine.errors import DeployRefused
from engine.models import Instance
from web.extensions import db

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "bpmn-corpus"
FILES = sorted(CORPUS.rglob("*.bpmn"))


def test_the_corpus_is_there():
    assert len(FILES) >= 20, f"expected the shared BPMN corpus under {CORPUS}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_deploys_and_starts_or_is_refused_clearly(app, path):
    files = {path.name: path.read_bytes()}
    with app.app_context():
        forms = app.extensions["brand_forms"]
        try:
            version, created = deploy.deploy_unit(files, forms, "corpus",
                                                  script_names=services.script_names())
        except DeployRefused as refused:
            assert refused.problems
            for problem in refused.problems:
                text = problem.message()
                assert problem.line is not None or problem.element_id is not None, text
                if problem.line is not None:
                    assert f"第 {problem.line} 行" in text
                if problem.element_id is not None:
                    assert problem.element_id in text
            return

        assert created and version.version == 1
        instance = runtime.start_instance(version.process_key, None)
        db.session.commit()
        assert db.session.get(Instance, instance.id).status in ("running", "completed")
