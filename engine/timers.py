"""Firing due timers, and the scheduler that wakes exactly when the next one is due.

The scheduler does not poll on a fixed period: after each run it sleeps until
the earliest ``due_at`` in the timer table, and a commit that writes an earlier
timer wakes it (see ``notice``). A long safety sleep covers timers written by
another process. Each instance's timers fire in their own transaction, given
by the host as a context manager, so one failing case does not hold up others.
"""

import logging
import threading
from datetime import UTC, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, clock, runtime, services
from engine.errors import BrandError

logger = logging.getLogger(__name__)

# Longest sleep between runs; covers timers another process wrote while this one slept.
SAFETY_SLEEP = timedelta(seconds=60)
# A timer still due after a run that fired nothing (its case locked by another scheduler or
# a user's step): look again this soon rather than at once, which would spin. After a run
# that fired something, a timer that fell due meanwhile is fired at once.
RETRY_DELAY = timedelta(milliseconds=200)
# The next run is scheduled this far ahead at least, so that the current one has returned.
RESCHEDULE_MARGIN = timedelta(milliseconds=5)


def fire_due_timers(transaction, now=None, max_rounds=50):
    """Fire every timer due by ``now`` (or by the clock at each round); return how many fired.

    Fired timers can create new timers that are already due (a chain); rounds repeat
    until nothing is due, at most ``max_rounds`` times. The domain's periodic jobs
    (``services.periodic_job``) run first, so that the cases they open fire with this run.
    """
    for job in services.periodic_jobs():
        try:
            with audit.acting_as("scheduler", f"periodic job {job.__name__}"):
                job(transaction, now)
        except Exception:  # noqa: BLE001 - a failing job must not hold up the cases' timers
            logger.exception("periodic job %s failed", job.__name__)
    fired = 0
    for _ in range(max_rounds):
        with transaction():
            due = runtime.due_timer_instances(now or clock.now())
        if not due:
            break
        progressed = False
        for instance_id in due:
            try:
                with audit.acting_as("timer", f"fire timers of case {instance_id}"), \
                        transaction():
                    names = runtime.fire_timers(instance_id, now or clock.now())
            except BrandError as exc:
                logger.warning("timer of instance %s not fired: %s", instance_id, exc.message)
                continue
            except (StaleDataError, DBAPIError) as exc:
                # Lost a race with a user's step; the next round sees the new state.
                logger.warning("timer of instance %s not fired this round: %s", instance_id, exc)
                continue
            if names:
                fired += len(names)
                progressed = True
        if not progressed:
            break
    return fired


class TimerScheduler:
    """An APScheduler job that runs at the earliest due timer, then reschedules itself.

    While a run is going on, the job is not rescheduled from outside: APScheduler would
    skip (and so lose) a run that falls due before the current one has returned. A timer
    committed meanwhile is remembered instead, and the run looks again before it ends; a
    run that fired something goes round again at once while timers are due.
    """

    def __init__(self, transaction):
        self._transaction = transaction
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._next = None
        self._running = False
        self._requested = None

    def start(self):
        self._scheduler.start()
        with self._lock:
            self._schedule(clock.now())

    def shutdown(self):
        self._scheduler.shutdown(wait=False)

    def notice(self, due_at):
        """A timer due at ``due_at`` (clock time, naive UTC) was committed: wake earlier if
        needed."""
        with self._lock:
            if self._running:
                if self._requested is None or due_at < self._requested:
                    self._requested = due_at
            elif self._next is None or due_at < self._next:
                self._schedule(due_at)

    def wake(self, due_at=None):
        """Run the job at ``due_at`` (clock time), or at once."""
        self.notice(clock.now() if due_at is None else due_at)

    def _schedule(self, run_at):
        """(Under the lock.) Replace the job by one at ``run_at`` (clock time)."""
        self._next = run_at
        # APScheduler runs on real time; the virtual clock may be ahead of it.
        real = (run_at - clock.offset()).replace(tzinfo=UTC)
        self._scheduler.add_job(self._run, "date", run_date=real, id="fire_timers",
                                replace_existing=True, misfire_grace_time=None)

    def _run(self):
        with self._lock:
            self._running, self._requested = True, None
        while True:
            fired, upcoming = self._fire()
            now = clock.now()
            with self._lock:
                requested, self._requested = self._requested, None
                if requested is not None and (upcoming is None or requested < upcoming):
                    upcoming = requested
                if fired and upcoming is not None and upcoming <= now:
                    continue        # more fell due while this round ran
                self._running = False
                if upcoming is not None and upcoming <= now:
                    upcoming = now + RETRY_DELAY    # held by another scheduler: not a spin
                limit = now + SAFETY_SLEEP
                # Never earlier than the margin: this run has not returned yet.
                self._schedule(max(min(upcoming or limit, limit), now + RESCHEDULE_MARGIN))
                return

    def _fire(self):
        """One pass: fire what is due; (how many fired, the next due time or None)."""
        try:
            fired = fire_due_timers(self._transaction)
            if fired:
                logger.info("fired %s timers", fired)
            with self._transaction():
                return fired, runtime.next_timer_due()
        except Exception:  # noqa: BLE001 - the scheduler thread must survive to try again
            logger.exception("timer run failed")
            return 0, None
