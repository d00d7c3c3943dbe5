"""Run the benchmark suite: ``python -m bench`` (``make bench``).

    python -m bench                      # every section, then one table
    python -m bench completion inbox     # some sections
    python -m bench --quick              # smaller sizes: a smoke run, not figures to quote
    python -m bench --no-postgres        # SQLite only

Each section runs in a process of its own. The table is printed and written as JSON to
``bench/results/<timestamp>.json`` and ``bench/results/latest.json``. PostgreSQL figures
use ``BENCH_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/bench_db, which is
wiped); they are skipped with a note when the server cannot be reached.
"""

import argparse
import importlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, quiet_logging

RESULTS = Path(__file__).resolve().parent / "results"

# name -> (module, function); the order of the table.
SECTIONS = {
    "completion": ("bench.completion", "run"),
    "http": ("bench.http", "run"),
    "inbox": ("bench.inbox", "run"),
    "timers": ("bench.timers", "run"),
    "verification": ("bench.labels", "run_verification"),
    "labels": ("bench.labels", "run_issue"),
    "deploy": ("bench.deploycheck", "run"),
}
SECTION_TIMEOUT = 600


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help=f"any of: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite figures only")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    unknown = [name for name in options.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return options


def _run_here(options):
    """Child process: run one section, write its figures as JSON to ``options.out``."""
    quiet_logging()
    module, function = SECTIONS[options.section]
    figures = getattr(importlib.import_module(module), function)(options)
    Path(options.out).write_text(json.dumps([f.as_dict() for f in figures], ensure_ascii=False))


def _run_child(name, options):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    command = [sys.executable, "-m", "bench", "--section", name, "--out", path]
    if options.quick:
        command.append("--quick")
    if options.no_postgres:
        command.append("--no-postgres")
    began = time.monotonic()
    try:
        completed = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent,
                                   timeout=SECTION_TIMEOUT, check=False)
        figures = json.loads(Path(path).read_text() or "[]") if completed.returncode == 0 \
            else None
        problem = None if figures is not None else f"exited with {completed.returncode}"
    except subprocess.TimeoutExpired:
        figures, problem = None, f"stopped after {SECTION_TIMEOUT} s"
    finally:
        Path(path).unlink(missing_ok=True)
    seconds = time.monotonic() - began
    if figures is None:
        figures = [Figure(name, f"{name}: failed", None, "", "FAILED", note=problem).as_dict()]
    return figures, seconds


def _cell(figure):
    ratio = f" ({figure['ratio']:.1f}x)" if figure.get("ratio") is not None else ""
    reference = figure["reference"] + ratio if figure["reference"] else ratio.strip(" ()")
    status = {True: "ok", False: "MISSED", None: ""}[figure["met"]]
    return [figure["name"], figure["shown"], reference, figure["target"], status]


def table(figures):
    """The results as a Markdown table (what the README shows)."""
    rows = [["figure", "result", "reference, same run", "target", ""]]
    rows += [_cell(f) for f in figures if f["unit"] or f["met"] is not None]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def notes(figures):
    return [f"- {f['name']}: {f['note']}" for f in figures if f["note"]]


def _machine():
    from importlib.metadata import version

    import SpiffWorkflow  # noqa: F401 - the version is read from its metadata
    import sqlalchemy

    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "sqlite": sqlite3.sqlite_version,
            "SpiffWorkflow": version("SpiffWorkflow"), "SQLAlchemy": sqlalchemy.__version__,
            "load_average_at_start": os.getloadavg()[0]}


def main(argv=None):
    options = _arguments(sys.argv[1:] if argv is None else argv)
    if options.section:
        _run_here(options)
        return
    names = options.sections or list(SECTIONS)
    started = datetime.now(UTC)
    machine = _machine()
    figures, durations = [], {}
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        found, seconds = _run_child(name, options)
        durations[name] = round(seconds, 1)
        figures.extend(found)
        print(f"[bench] {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    total = sum(durations.values())
    document = {"started": started.isoformat(timespec="seconds"), "quick": options.quick,
                "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None
                                                         else argv),
                "machine": machine, "section_seconds": durations, "total_seconds": total,
                "figures": figures, "table": table(figures)}
    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(document, ensure_ascii=False, indent=1)
    (RESULTS / f"{stamp}.json").write_text(text)
    if not options.quick:
        # latest.json is what the README quotes: a smoke run with small sizes never replaces it.
        (RESULTS / "latest.json").write_text(text)
    print()
    print(table(figures))
    print()
    print("\n".join(notes(figures)))
    print(f"\n{machine['cpus']} CPUs, Python {machine['python']}, SQLite {machine['sqlite']}, "
          f"SpiffWorkflow {machine['SpiffWorkflow']}; {total:.0f} s in all; "
          f"bench/results/{stamp}.json")


if __name__ == "__main__":
    main()
