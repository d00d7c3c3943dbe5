"""Where the time of a piece of work goes: SpiffWorkflow, the database layer, our code.

``breakdown`` runs a callable under cProfile and adds up the time spent *in* each function
(not in what it calls) by the package the function belongs to. Profiling slows Python
code more than C code, so the shares are indicative; the timed figures are measured
without it.
"""

import cProfile
import pstats

# (share name, path fragments) in order; the first match wins.
GROUPS = (
    ("SpiffWorkflow", ("/SpiffWorkflow/",)),
    ("sandbox (ours)", ("/engine/sandbox.py", "/RestrictedPython/", "<sandbox>")),
    ("database (SQLAlchemy, driver)", ("/sqlalchemy/", "/psycopg", "sqlite3")),
    ("JSON", ("/json/", "'dumps'", "'loads'", "encode' of '_json", "_json.")),
    ("our code (engine/, web/)", ("/engine/", "/web/", "/config/")),
    ("Flask and libraries", ("/site-packages/",)),
)


RUNTIME = "Python runtime"


def _group(filename, function):
    where = f"{filename} {function}"
    for name, fragments in GROUPS:
        if any(fragment in where for fragment in fragments):
            return name
    return RUNTIME


def breakdown(work):
    """Run ``work()``; return [(share name, fraction of the profiled time)], largest first.

    Time in the Python runtime (builtins, the standard library) is charged to whoever
    called it, following callers up to a few levels: ``copy.deepcopy`` called by spiff is
    spiff's time, ``sqlite3`` methods are the database's.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        work()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler).stats
    memo = {}

    def owners(function, depth=0):
        if function in memo:
            return memo[function]
        own = _group(function[0], function[2])
        callers = stats.get(function, (0, 0, 0, 0, {}))[4]
        if own != RUNTIME or depth > 6 or not callers:
            memo[function] = {own: 1.0}
            return memo[function]
        memo[function] = {RUNTIME: 1.0}  # a cycle ends here
        weights = {caller: edge[3] for caller, edge in callers.items()}
        whole = sum(weights.values()) or 1.0
        shares = {}
        for caller, weight in weights.items():
            for name, share in owners(caller, depth + 1).items():
                shares[name] = shares.get(name, 0.0) + share * weight / whole
        memo[function] = shares
        return shares

    totals = {}
    for function, (_cc, _nc, tottime, _ct, _callers) in stats.items():
        for name, share in owners(function).items():
            totals[name] = totals.get(name, 0.0) + tottime * share
    whole = sum(totals.values()) or 1.0
    return sorted(((name, seconds / whole) for name, seconds in totals.items()),
                  key=lambda item: -item[1])


def describe(shares):
    return ", ".join(f"{name} {share:.0%}" for name, share in shares if share >= 0.005)
