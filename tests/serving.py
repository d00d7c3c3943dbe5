"""Real server processes for the tests that need them: gunicorn workers and stand-alone
schedulers, started against the test database and stopped (or killed) by the test."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(database_url, **extra):
    env = dict(os.environ)
    env.update({"BRAND_MODE": "test", "BRAND_DATABASE_URL": database_url,
                "BRAND_SECRET_KEY": "test-secret", "BRAND_RATELIMIT_ENABLED": "0",
                "PYTHONPATH": str(ROOT)})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Process:
    """A child process in its own process group, its output kept in a file."""

    def __init__(self, args, env, log_path):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL to the whole group: master and workers die mid-step, as in a power cut."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=30)
        self._log.close()

    def stop(self):
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._log.close()


def gunicorn(database_url, log_path, workers=4, scheduler=True, threads=2):
    port = free_port()
    env = environment(database_url, BRAND_SCHEDULER="1" if scheduler else "0")
    process = Process([sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread",
                       "--threads", str(threads), "-b", f"127.0.0.1:{port}",
                       "--graceful-timeout", "5", "web.wsgi:app"], env, log_path)
    process.url = f"http://127.0.0.1:{port}"
    wait_until_serving(process)
    return process


def scheduler(database_url, log_path):
    env = environment(database_url)
    return Process([sys.executable, "-m", "flask", "--app", "web", "run-scheduler"], env,
                   log_path)


def wait_until_serving(process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError("server exited at start:\n" + process.log()[-3000:])
        try:
            with urllib.request.urlopen(process.url + "/login", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError("server did not start:\n" + process.log()[-3000:])


def wait_for(condition, timeout=90, every=0.25):
    """Poll ``condition`` until it is true; returns its last value."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = condition()
    return value
