"""Task completion, server side, against the bare engine, with 100 / 10,000 / 100,000
instances already in the database (SQLite by default, as shipped).

Server side is what the API's complete view does minus HTTP: check the task against the
user, validate the form, load the instance, restore the workflow, run the task and the
engine steps (sandbox, domain effects), write the state back under its lock version,
rewrite the human-task and timer rows, append history, commit. The bare engine does the
same completions of the same diagram in memory with a JSON round trip each (see
``bench.admission``). Rounds alternate between the two so both see the same machine.
"""

import time

from sqlalchemy import func, select

from bench import admission
from bench.common import Figure, make_app, median, scratch_sqlite, seed
from bench.profile import breakdown, describe

LEVELS = (100, 10_000, 100_000)
QUICK_LEVELS = (100, 2_000)
ROUNDS = 24  # rounds of one case (six completions) on each side
TARGET = 4.0


def _server_round(applicants, staff, values, forms):
    """Start one case per applicant (not timed), then time every completion."""
    from engine import cases, inbox
    from engine.db import session
    from engine.forms import load_json

    started = []
    for user in applicants:
        started.append(cases.start_case(user, "admission_review", admission.APPLICATION,
                                         load_json).id)
        session().commit()
    timings = []
    for user, instance_id in zip(applicants, started, strict=True):
        for (who, spec, data), _typed in zip(admission.STEPS, values, strict=True):
            actor = user if who == "enterprise" else staff[who]
            task_id = admission.open_task_id(instance_id, spec)
            began = time.perf_counter()
            task = inbox.get_task(actor, task_id)
            typed = load_json(forms.get(task.form), data)
            inbox.complete(actor, task_id, typed)
            session().commit()
            timings.append(time.perf_counter() - began)
    return timings


def _bare_round(bare, start_values, values, cases):
    documents = [bare.start(start_values) for _ in range(cases)]
    timings = []
    for document in documents:
        for (_who, spec, _data), typed in zip(admission.STEPS, values, strict=True):
            began = time.perf_counter()
            document = bare.complete(document, spec, typed)
            timings.append(time.perf_counter() - began)
    return timings


def _measure(app, bare, staff, values, start_values, prefix, rounds=ROUNDS):
    """Per round one case on each side, in alternating order; returns the medians of the
    server and bare per-completion means and the median of the per-round ratios."""
    forms = app.extensions["brand_forms"]
    applicants = admission.make_applicants(rounds, prefix)
    server_means, bare_means, ratios = [], [], []
    for r, user in enumerate(applicants):
        if r % 2:
            server = _mean(_server_round([user], staff, values, forms))
            reference = _mean(_bare_round(bare, start_values, values, 1))
        else:
            reference = _mean(_bare_round(bare, start_values, values, 1))
            server = _mean(_server_round([user], staff, values, forms))
        server_means.append(server)
        bare_means.append(reference)
        ratios.append(server / reference)
    return median(server_means), median(bare_means), median(ratios)


def _mean(values):
    return sum(values) / len(values)


def run(options):
    from engine import clock, services
    from engine.db import session
    from engine.forms import load_json
    from engine.models import HumanTask, Instance

    levels = QUICK_LEVELS if options.quick else LEVELS
    url = scratch_sqlite("completion")
    app = make_app(url)
    seed(app)
    figures = []
    with app.app_context():
        forms = app.extensions["brand_forms"]
        values = admission.step_values(forms)
        start_values = load_json(forms.get("admission_apply"), admission.APPLICATION)
        staff = admission.staff_users()
        template_user = admission.make_applicants(1, "template")[0]
        snapshots = admission.capture_case(template_user, staff, values)
        bare = admission.BareEngine(services.script_functions())
        # Warm both (spec cache, compiled expressions, statement caches); not recorded.
        _measure(app, bare, staff, values, start_values, "warm", rounds=2)

        cloner = admission.Cloner("sqlite", snapshots)
        now = clock.now()
        ratios = []
        for level in levels:
            existing = session().scalar(select(func.count(Instance.id)))
            began = time.perf_counter()
            if level > existing:
                cloner.insert(session().connection(), level - existing, now)
                session().commit()
            filled = time.perf_counter() - began
            tasks = session().scalar(select(func.count(HumanTask.id)))
            server, reference, ratio = _measure(app, bare, staff, values, start_values,
                                                f"l{level}")
            ratios.append(ratio)
            figures.append(Figure(
                "completion", f"task completion, {level:,} instances (server side)",
                server * 1000, "ms", f"{server * 1000:.1f} ms",
                reference=f"bare engine {reference * 1000:.1f} ms", ratio=ratio,
                target=f"<= {TARGET:g}x bare", met=ratio <= TARGET,
                note=f"SQLite; {tasks:,} task rows; rows cloned in {filled:.0f} s; "
                     f"medians over {ROUNDS} rounds of one case (6 completions) each side"))

        applicants = admission.make_applicants(4, "profile")
        shares = breakdown(lambda: _server_round(applicants, staff, values, forms))
        bare_shares = breakdown(lambda: _bare_round(bare, start_values, values, 4))
    flat = ratios[-1] / ratios[0]
    figures.append(Figure(
        "completion", "completion ratio, largest / smallest database", flat, "x",
        f"{flat:.2f}x", target="flat (about 1x)", met=flat <= 1.25,
        note="the ratio must not grow with the number of instances"))
    figures.append(Figure(
        "completion", "where a server-side completion spends its time", None, "", "profile",
        note=describe(shares)))
    figures.append(Figure(
        "completion", "where a bare-engine completion spends its time", None, "", "profile",
        note=describe(bare_shares)))
    return figures
