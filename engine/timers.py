"""Firing due timers, and the scheduler that wakes exactly when the next one is due.

The scheduler does not poll on a fixed period: after each run it sleeps until
the earliest ``due_at`` in the timer table, and a commit that writes an earlier
timer wakes it (see ``notice``). A long safety sleep covers timers written by
another process. Each instance's timers fire in their own transaction, given
by the host as a context manager, so one failing case does not hold up others.
"""

import logging
from datetime import UTC, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, clock, runtime, services
from engine.errors import BrandError

logger = logging.getLogger(__name__)

# Longest sleep between runs; covers timers another process wrote while this one slept.
SAFETY_SLEEP = timedelta(seconds=60)
# A timer still due after a run was skipped (its case locked by another scheduler or a
# user's step): look again this soon rather than at once, which would spin.
RETRY_DELAY = timedelta(milliseconds=200)


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
    """An APScheduler job that runs at the earliest due timer, then reschedules itself."""

    def __init__(self, transaction):
        self._transaction = transaction
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._next = None

    def start(self):
        self._scheduler.start()
        self.wake()

    def shutdown(self):
        self._scheduler.shutdown(wait=False)

    def notice(self, due_at):
        """A timer due at ``due_at`` (clock time, naive UTC) was committed: wake earlier if
        needed."""
        if self._next is None or due_at < self._next:
            self.wake(due_at)

    def wake(self, due_at=None):
        """Run the job at ``due_at`` (clock time), or at once."""
        run_at = clock.now() if due_at is None else due_at
        self._next = run_at
        # APScheduler runs on real time; the virtual clock may be ahead of it.
        real = (run_at - clock.offset()).replace(tzinfo=UTC)
        self._scheduler.add_job(self._run, "date", run_date=real, id="fire_timers",
                                replace_existing=True, misfire_grace_time=None)

    def _run(self):
        try:
            fired = fire_due_timers(self._transaction)
            if fired:
                logger.info("fired %s timers", fired)
            with self._transaction():
                upcoming = runtime.next_timer_due()
        except Exception:  # noqa: BLE001 - the scheduler thread must survive to try again
            logger.exception("timer run failed")
            upcoming = None
        now = clock.now()
        limit = now + SAFETY_SLEEP
        if upcoming is not None and upcoming <= now:
            upcoming = now + RETRY_DELAY
        self.wake(min(upcoming, limit) if upcoming else limit)
