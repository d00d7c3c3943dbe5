"""The names a diagram may call: script functions and service-task operations.

Script functions are offered inside the sandbox to scripts, conditions and
timer expressions. Service operations are what a service task's operator names.
Domain modules register theirs with the decorators below; the registry is the
whole list of what a diagram can reach.
"""

from engine import clock
from engine.workdays import add_working_days

_functions = {}
_operations = {}


def script_function(fn):
    """Offer ``fn`` to diagram scripts under its own name."""
    _functions[fn.__name__] = fn
    return fn


def service_operation(fn):
    """Make ``fn`` callable from a service task whose operator is its name."""
    _operations[fn.__name__] = fn
    return fn


def script_functions():
    _load_domain()
    return dict(_functions)


def service_operations():
    _load_domain()
    return dict(_operations)


def script_names():
    """Every name a diagram may use besides its own data (for the deploy check)."""
    _load_domain()
    return frozenset(_functions) | frozenset(_operations)


def _load_domain():
    # Importing the domain modules registers their functions; done late to avoid cycles.
    from engine import (  # noqa: F401
        admission,
        complaints,
        deposits,
        expulsion,
        inspections,
        labels,
        licensing,
        notices,
        royalties,
    )


@script_function
def deadline_in_working_days(days):
    """ISO time (UTC) ``days`` working days from now: for timeDate timer expressions."""
    end, _exact = add_working_days(clock.now(), int(days))
    return end.isoformat() + "+00:00"


@script_function
def deadline_in(duration):
    """ISO time (UTC) an ISO duration from now ("P15D"), for timeDate timer expressions."""
    return (clock.now() + clock.parse_duration(duration)).isoformat() + "+00:00"


_start_guards = {}


def start_guard(process_key):
    """Register ``fn(user, enterprise, data)`` to refuse starting a case of ``process_key``."""
    def register(fn):
        _start_guards[process_key] = fn
        return fn
    return register


def check_start(process_key, user, enterprise, data):
    _load_domain()
    guard = _start_guards.get(process_key)
    if guard is not None:
        guard(user, enterprise, data)


_starters = {}


def starters(process_key):
    """Register ``fn(user) -> bool``: who may start ``process_key`` at all, beyond its lane.

    Checked before the start form is read, so that someone who may not start a case is
    refused (403) rather than told what is wrong with the data, and so that the process
    list's ``can_start`` tells the truth."""
    def register(fn):
        _starters[process_key] = fn
        return fn
    return register


def may_start(process_key, user):
    _load_domain()
    allowed = _starters.get(process_key)
    return allowed is None or bool(allowed(user))


_field_checks = {}


def field_check(form_name):
    """Register ``fn(task, values) -> {field: [msgid]}``: the checks the service step of a
    task with form ``form_name`` makes, run on the fields that passed the form's own
    validation, so that one submission shows every problem at once."""
    def register(fn):
        _field_checks[form_name] = fn
        return fn
    return register


def field_problems(task, values):
    """The registered field check of ``task``'s form on ``values`` ({} when none)."""
    _load_domain()
    check = _field_checks.get(task.form)
    return check(task, values) if check is not None else {}


_periodic_jobs = []


def periodic_job(fn):
    """Register ``fn(transaction, now=None)`` to run at the start of every timer run
    (``engine.timers.fire_due_timers``): work due by the calendar rather than by a case's
    timer, such as opening a royalty period. A job must be idempotent and open its own
    transactions with ``transaction``."""
    _periodic_jobs.append(fn)
    return fn


def periodic_jobs():
    _load_domain()
    return list(_periodic_jobs)
