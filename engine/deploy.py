"""Deploying diagrams: check, parse once, store as a new process version.

A deploy unit is one ``.bpmn`` file plus the ``.dmn`` decision tables it
calls. Its process key is the id of its executable process (the one named like
the file when there are several). Identical content (same hash as the latest
version) creates no new version.
"""

import hashlib
import logging
import re
from pathlib import Path

from sqlalchemy import func, select

from engine import checks, clock
from engine.db import session
from engine.errors import DeployRefused, NotFound
from engine.models import Group, ProcessVersion
from engine.serialization import spec_to_dict

logger = logging.getLogger(__name__)

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_DECISION_REF = re.compile(rb'calledDecisionId>\s*([^<\s]+)\s*<')


def known_groups():
    return set(session().scalars(select(Group.id)))


def check_unit(files, forms, script_names=frozenset()):
    """Every problem of a deploy unit (errors and warnings), without deploying it."""
    return checks.check_files(files, known_groups=known_groups(),
                              form_fields=forms.field_names, script_names=script_names)


def deploy_unit(files, forms, deployed_by, reason=None, script_names=frozenset(),
                skip_known=False):
    """Deploy one unit; return (version, created). Raises DeployRefused listing the problems.

    With ``skip_known``, content equal to any earlier version (not only the latest) creates
    nothing: redeploying ``bpmn/`` must not undo a version the office deployed since.
    """
    problems = check_unit(files, forms, script_names)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DeployRefused("流程图无法执行", errors)

    try:
        parser = checks.parse_specs(files)
    except checks.CheckFailed as exc:
        raise DeployRefused("流程图无法执行", exc.problems) from None

    bpmn_name = next(name for name in files if name.endswith(".bpmn"))
    key = _process_key(parser, bpmn_name)
    spec = parser.get_spec(key)
    subprocess_specs = parser.get_subprocess_specs(key)

    digest = content_hash(files)
    latest = latest_version(key)
    if latest is not None and latest.content_hash == digest:
        return latest, False
    if latest is not None and skip_known and session().scalar(select(ProcessVersion.id).where(
            ProcessVersion.process_key == key, ProcessVersion.content_hash == digest).limit(1)):
        logger.info("%s: content of an earlier version, latest v%s stays", key, latest.version)
        return latest, False

    version = ProcessVersion(
        process_key=key,
        version=(latest.version + 1) if latest else 1,
        name=spec.description or key,
        content_hash=digest,
        files={name: data.decode("utf-8") for name, data in files.items()},
        spec=spec_to_dict(spec, subprocess_specs),
        deployed_by=deployed_by,
        deployed_at=clock.now(),
        reason=reason,
    )
    session().add(version)
    session().flush()
    logger.info("deployed %s version %s by %s", key, version.version, deployed_by)
    return version, True


def deploy_directory(directory, forms, deployed_by="system", script_names=frozenset()):
    """Deploy every ``.bpmn`` file of a directory with the decision tables it calls.

    Returns a list of (file name, version or None, created, problems).
    """
    directory = Path(directory)
    decisions = {p.name: p.read_bytes() for p in sorted(directory.glob("*.dmn"))}
    results = []
    for path in sorted(directory.glob("*.bpmn")):
        files = {path.name: path.read_bytes()}
        files.update(_called_decision_files(files[path.name], decisions))
        try:
            version, created = deploy_unit(files, forms, deployed_by, "deployed from bpmn/",
                                           script_names, skip_known=True)
            results.append((path.name, version, created, []))
        except DeployRefused as exc:
            results.append((path.name, None, False, exc.problems))
    return results


def _called_decision_files(bpmn, decisions):
    wanted = {m.decode() for m in _DECISION_REF.findall(bpmn)}
    chosen = {}
    for name, data in decisions.items():
        if any(f'id="{decision}"'.encode() in data for decision in wanted):
            chosen[name] = data
    return chosen


def _process_key(parser, bpmn_name):
    ids = parser.get_process_ids()
    stem = Path(bpmn_name).stem
    if stem in ids:
        return stem
    return ids[0]


def content_hash(files):
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()


def latest_version(key):
    return session().scalars(
        select(ProcessVersion).where(ProcessVersion.process_key == key)
        .order_by(ProcessVersion.version.desc()).limit(1)).first()


def get_version(key, version=None):
    if version is None:
        found = latest_version(key)
    else:
        found = session().scalars(select(ProcessVersion).where(
            ProcessVersion.process_key == key, ProcessVersion.version == version)).first()
    if found is None:
        raise NotFound("流程未部署", process=key)
    return found


def list_processes():
    """[(key, [versions newest first])] for every deployed process."""
    rows = session().scalars(select(ProcessVersion).order_by(
        ProcessVersion.process_key, ProcessVersion.version.desc()))
    grouped = {}
    for row in rows:
        grouped.setdefault(row.process_key, []).append(row)
    return list(grouped.items())


def version_count():
    return session().scalar(select(func.count(ProcessVersion.id)))
