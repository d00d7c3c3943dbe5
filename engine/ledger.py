"""The performance deposit ledger (履约保证金台账): immutable entries in fen, and their sums.

Every change to a deposit is a new entry naming the case that caused it and the person
who approved it (none when a timer's step made it: a deadline passed); nothing is stored
as a running total or edited in place. What each kind does:

==========  ==========  ===========================================================
kind        term        effect
==========  ==========  ===========================================================
paid_in     缴纳         balance +
topped_up   追加/追缴    balance +
refunded    退还         balance -
frozen      冻结         frozen +: held for one case, no longer available
unfrozen    解冻         frozen - (only what that case holds)
paid_out    先行垫付     advanced +: paid to a consumer out of the deposit account at
                        once; the enterprise owes it back
recovered   追索到账     advanced -: the enterprise repaid the advance
deducted    扣缴         balance -, frozen -, advanced -: the frozen deposit repays the
                        advance for good (only what that case holds)
==========  ==========  ===========================================================

``balance`` is the enterprise's deposit, ``available = balance - frozen`` is what
a new freeze or a refund may take, and ``advanced`` is money already paid out for
the enterprise and not yet repaid; ``balance - advanced`` is what the deposit
account actually holds for it. No entry may leave frozen, available or advanced
below zero, or an advance larger than the deposit behind it.

Concurrency: every entry is written under a lock on the enterprise's row (``SELECT
... FOR UPDATE`` on PostgreSQL; on SQLite a write to the row first, which makes the
transaction the database's one writer before the sums are read), so the check and
the new entry see the same sums. The unique (enterprise, sequence) pair is a second
line: two writers that both got past the lock would collide on it.
"""

import hashlib
import logging
from dataclasses import dataclass, field, replace

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import selectinload

from engine import clock
from engine.db import is_postgres, session
from engine.errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from engine.inbox import ENTERPRISE_GROUP
from engine.models import DepositEntry, Enterprise

logger = logging.getLogger(__name__)

# kind -> (balance, frozen, advanced) signs.
EFFECTS = {
    "paid_in": (1, 0, 0),
    "topped_up": (1, 0, 0),
    "refunded": (-1, 0, 0),
    "frozen": (0, 1, 0),
    "unfrozen": (0, -1, 0),
    "paid_out": (0, 0, 1),
    "recovered": (0, 0, -1),
    "deducted": (-1, -1, -1),
}
KIND_NAMES = {
    "paid_in": N_("缴纳"),
    "topped_up": N_("追加缴纳"),
    "refunded": N_("退还"),
    "frozen": N_("冻结"),
    "unfrozen": N_("解冻"),
    "paid_out": N_("先行垫付"),
    "recovered": N_("追索到账"),
    "deducted": N_("扣缴"),
}
# Kinds that act on what one case holds frozen, never on another case's freeze.
CASE_BOUND = frozenset({"unfrozen", "deducted"})
# Staff who see every enterprise's ledger page; enterprise users see their own.
LEDGER_GROUPS = frozenset({"finance", "office", "leadership"})
# Staff who read a deposit through the API: the ledger's keepers and brand protection, which
# adjudicates the disputes that freeze and deduct it. Other departments (the hotline is run
# by an outside carrier) see the enterprise list without amounts.
DEPOSIT_READERS = LEDGER_GROUPS | {"protection"}

NOT_POSITIVE = N_("金额须为大于零的整数（分）")


@dataclass(frozen=True)
class Position:
    """The sums of an enterprise's entries, in fen."""

    balance_fen: int = 0
    frozen_fen: int = 0
    advanced_fen: int = 0

    @property
    def available_fen(self):
        return self.balance_fen - self.frozen_fen

    @property
    def held_fen(self):
        """What the deposit account holds for the enterprise (advances have left it)."""
        return self.balance_fen - self.advanced_fen

    @classmethod
    def from_sums(cls, sums):
        position = cls()
        for kind, total in sums.items():
            position = position.after(kind, total)
        return position

    def after(self, kind, amount_fen):
        balance, frozen, advanced = EFFECTS[kind]
        return replace(self, balance_fen=self.balance_fen + balance * amount_fen,
                       frozen_fen=self.frozen_fen + frozen * amount_fen,
                       advanced_fen=self.advanced_fen + advanced * amount_fen)

    def problem(self):
        """The rule this position breaks (a message), or None."""
        if self.frozen_fen < 0:
            return N_("解冻金额超过冻结金额")
        if self.available_fen < 0:
            return N_("保证金可用余额不足")
        if self.advanced_fen < 0:
            return N_("追回金额超过尚未追回的垫付款")
        if self.advanced_fen > self.balance_fen:
            return N_("垫付款超过保证金余额")
        return None


@event.listens_for(DepositEntry, "before_update")
@event.listens_for(DepositEntry, "before_delete")
def _refuse_change(_mapper, _connection, target):
    raise RuntimeError(f"deposit entry {target.id} is immutable: post a new entry instead")


# -- reading -----------------------------------------------------------------------------------

def _sums(*conditions):
    rows = session().execute(
        select(DepositEntry.kind, func.sum(DepositEntry.amount_fen))
        .where(*conditions).group_by(DepositEntry.kind))
    return {kind: int(total or 0) for kind, total in rows}


def position(enterprise_id):
    """Balance, frozen, available and advanced amounts of one enterprise, from its entries."""
    return Position.from_sums(_sums(DepositEntry.enterprise_id == enterprise_id))


def positions(enterprise_ids=None):
    """{enterprise id: Position} for many enterprises in one query."""
    query = (select(DepositEntry.enterprise_id, DepositEntry.kind,
                    func.sum(DepositEntry.amount_fen))
             .group_by(DepositEntry.enterprise_id, DepositEntry.kind))
    if enterprise_ids is not None:
        query = query.where(DepositEntry.enterprise_id.in_(list(enterprise_ids)))
    sums = {}
    for enterprise_id, kind, total in session().execute(query):
        sums.setdefault(enterprise_id, {})[kind] = int(total or 0)
    return {eid: Position.from_sums(kinds) for eid, kinds in sums.items()}


def case_frozen(enterprise_id, instance_id):
    """What case ``instance_id`` holds frozen of the enterprise's deposit."""
    if instance_id is None:
        return 0
    return Position.from_sums(_sums(DepositEntry.enterprise_id == enterprise_id,
                                    DepositEntry.instance_id == instance_id)).frozen_fen


def entries(enterprise_id=None):
    """The entries of one enterprise (or all), oldest first."""
    query = (select(DepositEntry).options(selectinload(DepositEntry.approver))
             .order_by(DepositEntry.enterprise_id, DepositEntry.sequence))
    if enterprise_id is not None:
        query = query.where(DepositEntry.enterprise_id == enterprise_id)
    return session().scalars(query).all()


def enterprise_names(enterprise_ids):
    """{id: name} of the given enterprises (for exports)."""
    if not enterprise_ids:
        return {}
    return dict(session().execute(select(Enterprise.id, Enterprise.name).where(
        Enterprise.id.in_(list(enterprise_ids)))).all())


def shortfall(enterprise, current=None):
    """How much the deposit lacks to reach the enterprise's required level (0 if none)."""
    current = current or position(enterprise.id)
    return max(0, (enterprise.deposit_required_fen or 0) - current.balance_fen)


def get_enterprise(enterprise_id):
    enterprise = session().get(Enterprise, enterprise_id)
    if enterprise is None:
        raise NotFound("企业不存在", enterprise_id=enterprise_id)
    return enterprise


def list_enterprises(user):
    """The enterprises ``user`` may see: its own for an enterprise user, all for staff."""
    query = select(Enterprise).order_by(Enterprise.id)
    if user.enterprise_id is not None:
        query = query.where(Enterprise.id == user.enterprise_id)
    elif not user.group_ids - {ENTERPRISE_GROUP}:
        return []
    return session().scalars(query).all()


def check_may_view(user, enterprise_id):
    """Enterprise users see their own deposit; ``DEPOSIT_READERS`` see every enterprise's."""
    if user.enterprise_id is not None:
        if user.enterprise_id != enterprise_id:
            raise Forbidden("只能查看本企业的保证金")
    elif not may_read_deposits(user):
        raise Forbidden("没有权限查看保证金")


def may_read_deposits(user):
    """Whether staff ``user`` may read every enterprise's deposit amounts."""
    return user.enterprise_id is None and bool(user.group_ids & DEPOSIT_READERS)


def may_view_ledger_pages(user):
    return user.enterprise_id is None and bool(user.group_ids & LEDGER_GROUPS)


# -- writing -----------------------------------------------------------------------------------

def lock_enterprise(enterprise_id):
    """Serialize writers of one enterprise (its ledger, its applications) until the
    transaction ends; 404 when there is no such enterprise."""
    session().flush()
    if is_postgres():
        locked = session().scalar(select(Enterprise.id).where(Enterprise.id == enterprise_id)
                                  .with_for_update())
    else:
        # A no-op write takes SQLite's write lock now, before the sums are read.
        result = session().execute(
            update(Enterprise).where(Enterprise.id == enterprise_id)
            .values(id=Enterprise.id).execution_options(synchronize_session=False))
        locked = enterprise_id if result.rowcount == 1 else None
    if locked is None:
        raise NotFound("企业不存在", enterprise_id=enterprise_id)


def _digest(previous, entry):
    text = "|".join(str(part) for part in (
        previous, entry.enterprise_id, entry.sequence, entry.kind, entry.amount_fen,
        entry.instance_id, entry.approved_by, entry.note or "", entry.created_at.isoformat()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _amount(amount_fen):
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ValidationFailed("金额无效", fields={"amount_fen": [NOT_POSITIVE]})
    return amount_fen


def post(enterprise_id, kind, amount_fen, *, instance_id=None, approved_by=None, note=None):
    """Append one entry after checking that the ledger stays within its rules.

    Raises Conflict (409) naming the broken rule when the entry would leave frozen,
    available or advanced below zero, or take more than the case holds frozen.
    Only flushes: the caller's transaction commits it.
    """
    if kind not in EFFECTS:
        raise ValueError(f"unknown deposit entry kind {kind!r}")
    amount = _amount(amount_fen)
    lock_enterprise(enterprise_id)

    current = position(enterprise_id)
    if kind in CASE_BOUND and amount > case_frozen(enterprise_id, instance_id):
        problem = N_("金额超过本案件冻结的保证金")
    else:
        problem = current.after(kind, amount).problem()
    if problem is not None:
        logger.info("ledger refused %s of %s fen for enterprise %s (case %s): %s", kind, amount,
                    enterprise_id, instance_id, problem)
        raise Conflict(problem, enterprise_id=enterprise_id, kind=kind, amount_fen=amount,
                       balance_fen=current.balance_fen, frozen_fen=current.frozen_fen,
                       available_fen=current.available_fen,
                       advanced_fen=current.advanced_fen)

    last = session().execute(
        select(DepositEntry.sequence, DepositEntry.digest)
        .where(DepositEntry.enterprise_id == enterprise_id)
        .order_by(DepositEntry.sequence.desc()).limit(1)).first()
    entry = DepositEntry(enterprise_id=enterprise_id, kind=kind, amount_fen=amount,
                         sequence=last.sequence + 1 if last else 1, instance_id=instance_id,
                         approved_by=approved_by, note=(note or None) and str(note)[:2000],
                         created_at=clock.now())
    entry.digest = _digest(last.digest if last else "", entry)
    session().add(entry)
    session().flush()
    logger.info("ledger: enterprise %s %s %s fen (case %s, approved by %s)", enterprise_id,
                kind, amount, instance_id, approved_by)
    return entry


def pay_in(enterprise_id, amount_fen, **case):
    """The enterprise paid its deposit (finance confirmed the transfer)."""
    return post(enterprise_id, "paid_in", amount_fen, **case)


def top_up(enterprise_id, amount_fen, **case):
    return post(enterprise_id, "topped_up", amount_fen, **case)


def refund(enterprise_id, amount_fen, **case):
    return post(enterprise_id, "refunded", amount_fen, **case)


def freeze(enterprise_id, amount_fen, **case):
    return post(enterprise_id, "frozen", amount_fen, **case)


def unfreeze(enterprise_id, amount_fen, **case):
    return post(enterprise_id, "unfrozen", amount_fen, **case)


def pay_out(enterprise_id, amount_fen, **case):
    return post(enterprise_id, "paid_out", amount_fen, **case)


def recover(enterprise_id, amount_fen, **case):
    return post(enterprise_id, "recovered", amount_fen, **case)


def deduct(enterprise_id, amount_fen, **case):
    return post(enterprise_id, "deducted", amount_fen, **case)


# -- reconciliation ----------------------------------------------------------------------------

@dataclass
class Reconciliation:
    """The result of checking every entry: positions per enterprise and what is wrong."""

    positions: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    # (enterprise id, sequence or None, code, detail)
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems


def reconcile(enterprise_id=None):
    """Replay every entry in order and check the ledger's rules at each step.

    Checks, per enterprise: sequences run 1, 2, 3... without a gap; each digest matches
    the entry's content and its predecessor (nothing was edited in place); no prefix
    breaks the rules of ``Position.problem`` or leaves a case holding a negative freeze;
    every entry but an opening ``paid_in`` names a case, and every entry outside a case
    an approver (a case's entry made by a timer names none); and the database's own sums
    equal the replay.
    """
    result = Reconciliation()
    state = {}
    for entry in entries(enterprise_id):
        eid = entry.enterprise_id
        current, expected, previous, cases = state.get(eid, (Position(), 1, "", {}))

        def report(code, detail="", entry=entry, eid=eid):
            result.problems.append((eid, entry.sequence, code, detail))

        if entry.sequence != expected:
            report("sequence", f"expected {expected}")
        if entry.digest != _digest(previous, entry):
            report("digest", "content or order changed after writing")
        if entry.kind not in EFFECTS or entry.amount_fen <= 0:
            report("invalid", f"{entry.kind} {entry.amount_fen}")
            state[eid] = (current, entry.sequence + 1, entry.digest, cases)
            continue
        current = current.after(entry.kind, entry.amount_fen)
        if current.problem() is not None:
            report("rule", f"after {entry.kind}: {current}")
        if entry.instance_id is not None:
            held = cases.get(entry.instance_id, Position()).after(entry.kind, entry.amount_fen)
            cases[entry.instance_id] = held
            if held.frozen_fen < 0:
                report("case_frozen", f"case {entry.instance_id} frozen {held.frozen_fen}")
        elif entry.kind != "paid_in":
            report("no_case", entry.kind)
        if entry.approved_by is None and entry.instance_id is None:
            # A case's entry made by a timer (a deadline passing) names no approver; its
            # case history records the timer. Outside a case a person must approve.
            report("no_approver", entry.kind)
        state[eid] = (current, entry.sequence + 1, entry.digest, cases)

    summed = positions([enterprise_id] if enterprise_id is not None else None)
    for eid, (current, expected, _previous, _cases) in state.items():
        result.positions[eid] = current
        result.counts[eid] = expected - 1
        if summed.get(eid) != current:
            result.problems.append((eid, None, "sums", f"{summed.get(eid)} != {current}"))
    if result.problems:
        logger.warning("ledger reconciliation found %s problem(s)", len(result.problems))
    return result
