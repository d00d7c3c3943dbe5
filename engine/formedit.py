"""Editing the task forms under ``forms/`` from the office's pages.

Forms are not versioned with the diagrams: a diagram names a form, and every case,
on whatever version, shows the form as it is today (see README, "Forms and versions").
So a form may change only when it breaks no version in use: before a save, every
version that is the latest of its process or still has running cases is checked
again with the new form, and any new error refuses the save. A change that would
break an older version goes into a form with a new name, which only the next
version uses. Every save is kept in ``FormRevision`` (who, when, why, content).
"""

import dataclasses
import json
import logging
import os
import re
import tempfile
from pathlib import Path

from sqlalchemy import select

from engine import checks, clock, deploy
from engine.db import session
from engine.errors import N_, DeployRefused, NotFound, ValidationFailed
from engine.forms import FormDefinitionError, parse_form
from engine.models import FormRevision, Instance, ProcessVersion

logger = logging.getLogger(__name__)

FORM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
REASON_REQUIRED = N_("请说明修改原因")
BAD_NAME = N_("以小写字母开头，只能用小写字母、数字和下划线")


def form_text(forms, name):
    """The current file content of form ``name``."""
    path = _path(forms, name)
    if not path.is_file():
        raise NotFound("表单不存在", form=name)
    return path.read_text(encoding="utf-8")


def revisions(name):
    return session().scalars(select(FormRevision).where(FormRevision.form_name == name)
                             .order_by(FormRevision.id.desc())).all()


def parse_text(name, text):
    """The checked ``FormDef`` of ``text`` saved as form ``name``; 422 names the mistake."""
    if not FORM_NAME.match(name or ""):
        raise ValidationFailed("表单名称无效", fields={"name": [BAD_NAME]})
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise ValidationFailed("表单定义不是有效的 JSON", fields={"definition": [str(exc)]},
                               detail=str(exc)) from None
    try:
        form = parse_form(data, source=f"{name}.json")
    except FormDefinitionError as exc:
        raise ValidationFailed("表单定义有误", fields={"definition": [str(exc)]},
                               detail=str(exc)) from None
    if form.name != name:
        detail = f"'name' is {form.name!r} but the form is {name!r}"
        raise ValidationFailed("表单定义有误", fields={"definition": [detail]}, detail=detail)
    return form


def _no_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key %r" % key)
        result[key] = value
    return result


def save_form(forms, name, text, saved_by, reason, script_names=frozenset()):
    """Check and write form ``name``; returns the ``FormDef``.

    Raises ValidationFailed for a definition that does not parse and DeployRefused
    (problems with process, element and line) for one that would break a version in use.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("修改表单须说明原因", fields={"reason": [REASON_REQUIRED]})
    form = parse_text(name, text)
    broken = breaking_problems(forms, name, form, script_names)
    if broken:
        raise DeployRefused("此修改会使在用的流程版本无法执行", broken)

    session().add(FormRevision(form_name=name, content=text, saved_by=saved_by,
                               saved_at=clock.now(), reason=reason))
    session().flush()
    _write(_path(forms, name), text)
    forms.reload()
    logger.info("%s saved form %s: %s", saved_by, name, reason)
    return form


def breaking_problems(forms, name, form, script_names=frozenset()):
    """Errors the new form would add to versions in use (latest or with running cases)."""
    def fields_with_new_form(wanted):
        return form.field_names if wanted == name else forms.field_names(wanted)

    groups = deploy.known_groups()
    problems = []
    reference = re.compile(r'value="%s"' % re.escape(name))
    for version in _versions_in_use():
        files = {n: t.encode("utf-8") for n, t in version.files.items()}
        if not any(reference.search(t) for n, t in version.files.items() if n.endswith(".bpmn")):
            continue
        before = _errors(files, groups, forms.field_names, script_names)
        after = _errors(files, groups, fields_with_new_form, script_names)
        known = {(p.code, p.element_id) for p in before}
        where = f"{version.process_key} v{version.version}"
        problems.extend(dataclasses.replace(p, filename=f"{where}: {p.filename}")
                        for p in after if (p.code, p.element_id) not in known)
    return problems


def _errors(files, groups, form_fields, script_names):
    found = checks.check_files(files, known_groups=groups, form_fields=form_fields,
                               script_names=script_names)
    return [p for p in found if p.severity == "error"]


def _versions_in_use():
    running = set(session().scalars(select(Instance.version_id).where(
        Instance.status == "running").distinct()))
    found = {}
    for _key, versions in deploy.list_processes():
        found[versions[0].id] = versions[0]
    missing = running - set(found)
    if missing:
        for version in session().scalars(select(ProcessVersion).where(
                ProcessVersion.id.in_(missing))):
            found[version.id] = version
    return list(found.values())


def _path(forms, name):
    if not FORM_NAME.match(name or ""):
        raise NotFound("表单不存在", form=name)
    return Path(forms.directory) / f"{name}.json"


def _write(path, text):
    """Replace the file atomically; the directory's mtime tells other workers to reload."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".form-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
