"""The inbox: who may see and act on which human task, and the task verbs.

Visibility rules, in one place:
- staff see the tasks of their own departments (a lane names a department);
- an enterprise user sees only the enterprise-lane tasks of its own enterprise;
- a case is visible to staff of a department that has or had a task in it, to
  ``leadership`` and ``office`` (who oversee every case), and to its enterprise.

Every verb here flushes and records history; the caller commits.
"""

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, or_, select, update

from engine import clock, runtime
from engine.db import session
from engine.errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from engine.models import HumanTask, Instance, Membership, User

ENTERPRISE_GROUP = "enterprise"
OVERSIGHT_GROUPS = frozenset({"leadership", "office"})

NOT_A_MEMBER = N_("不是该部门成员")
CHOOSE_A_COLLEAGUE = N_("请选择一位同事")


@dataclass
class Page:
    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self):
        return max(1, -(-self.total // self.per_page))


def _visible_clause(user):
    if user.enterprise_id is not None:
        return and_(HumanTask.group_id == ENTERPRISE_GROUP,
                    HumanTask.enterprise_id == user.enterprise_id)
    staff_groups = user.group_ids - {ENTERPRISE_GROUP}
    return HumanTask.group_id.in_(staff_groups) if staff_groups else HumanTask.id.is_(None)


def can_see_task(user, task):
    if user.enterprise_id is not None:
        return task.group_id == ENTERPRISE_GROUP and task.enterprise_id == user.enterprise_id
    return task.group_id in user.group_ids and task.group_id != ENTERPRISE_GROUP


def can_see_instance(user, instance):
    if user.enterprise_id is not None:
        return instance.enterprise_id == user.enterprise_id
    if user.group_ids & OVERSIGHT_GROUPS:
        return True
    staff_groups = user.group_ids - {ENTERPRISE_GROUP}
    return bool(staff_groups) and session().scalar(select(exists().where(
        HumanTask.instance_id == instance.id, HumanTask.group_id.in_(staff_groups))))


def get_task(user, task_id):
    """The task if ``user`` may see it: 404 when it does not exist, 403 when not theirs."""
    task = session().get(HumanTask, task_id)
    if task is None:
        raise NotFound("任务不存在", task_id=task_id)
    if not can_see_task(user, task):
        raise Forbidden("此任务属于其他部门")
    return task


def get_instance(user, instance_id):
    instance = runtime.get_instance(instance_id)
    if not can_see_instance(user, instance):
        raise Forbidden("此案件属于其他部门")
    return instance


def list_tasks(user, *, group=None, mine=False, process=None, overdue=None, enterprise=None,
               state="open", page=1, per_page=20):
    """One page of the tasks ``user`` may see, soonest due first (undated last)."""
    query = select(HumanTask).where(_visible_clause(user), HumanTask.state == state)
    if group:
        query = query.where(HumanTask.group_id == group)
    if mine:
        query = query.where(HumanTask.assignee_id == user.id)
    if process:
        query = query.where(HumanTask.process_key == process)
    if enterprise:
        query = query.where(HumanTask.enterprise_id == int(enterprise))
    if overdue is not None:
        now = clock.now()
        query = query.where(HumanTask.due_at < now if overdue else
                            or_(HumanTask.due_at.is_(None), HumanTask.due_at >= now))

    total = session().scalar(select(func.count()).select_from(query.subquery()))
    rows = session().scalars(
        query.order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)
        .offset((page - 1) * per_page).limit(per_page)).all()
    return Page(rows, total, page, per_page)


def _guarded_update(task, values, **expected):
    """Update the task only if it still has the expected column values; else 409."""
    conditions = [HumanTask.id == task.id, HumanTask.state == "open"]
    conditions += [getattr(HumanTask, k).is_(None) if v is None else getattr(HumanTask, k) == v
                   for k, v in expected.items()]
    values = dict(values, lock_version=HumanTask.lock_version + 1)
    result = session().execute(
        update(HumanTask).where(*conditions).values(**values)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict("他人已先处理此任务，请刷新待办列表", task_id=task.id)
    session().refresh(task)


def _history(task, actor, kind, **detail):
    runtime._history(task.instance, actor, kind, task.spec_name, task.name, detail=detail)


def claim_task(user, task_id):
    task = get_task(user, task_id)
    if task.state != "open":
        raise Conflict("此任务已办结", task_id=task.id)
    if task.assignee_id == user.id:
        return task
    _guarded_update(task, {"assignee_id": user.id}, assignee_id=None)
    _history(task, user, "claimed")
    return task


def unclaim_task(user, task_id):
    task = get_task(user, task_id)
    if task.assignee_id != user.id and not user.leads(task.group_id):
        raise Forbidden("只有办理人或部门负责人可以释放此任务")
    _guarded_update(task, {"assignee_id": None, "delegated_by_id": None},
                    assignee_id=task.assignee_id)
    _history(task, user, "unclaimed")
    return task


def _member_of(group_id, username_or_id, field="assignee"):
    """The member of the group, or a 422 on ``field`` (the request's name for the user)."""
    query = select(User).join(Membership).where(Membership.group_id == group_id)
    if isinstance(username_or_id, int):
        query = query.where(User.id == username_or_id)
    else:
        query = query.where(User.username == username_or_id)
    member = session().scalars(query).first()
    if member is None:
        raise ValidationFailed("该用户不是此任务所属部门的成员",
                               fields={field: [NOT_A_MEMBER]})
    return member


def assign_task(user, task_id, assignee):
    """A group lead gives the task to a member of the group."""
    task = get_task(user, task_id)
    if not user.leads(task.group_id):
        raise Forbidden("只有部门负责人可以分派任务")
    member = _member_of(task.group_id, assignee)
    _guarded_update(task, {"assignee_id": member.id, "delegated_by_id": None},
                    assignee_id=task.assignee_id)
    _history(task, user, "assigned", to=member.username)
    return task


def delegate_task(user, task_id, delegate):
    """The assignee hands the task to a colleague, who works on it and returns it."""
    task = get_task(user, task_id)
    if task.assignee_id != user.id:
        raise Conflict("请先签收任务再委托", task_id=task.id)
    member = _member_of(task.group_id, delegate, field="delegate")
    if member.id == user.id:
        raise ValidationFailed("不能委托给自己",
                               fields={"delegate": [CHOOSE_A_COLLEAGUE]})
    _guarded_update(task, {"assignee_id": member.id, "delegated_by_id": user.id},
                    assignee_id=user.id)
    _history(task, user, "delegated", to=member.username)
    return task


def return_task(user, task_id, note=""):
    """The delegate gives the task back to the colleague who delegated it."""
    task = get_task(user, task_id)
    if task.delegated_by_id is None or task.assignee_id != user.id:
        raise Conflict("此任务不是委托给您的", task_id=task.id)
    _guarded_update(task, {"assignee_id": task.delegated_by_id, "delegated_by_id": None},
                    assignee_id=user.id)
    _history(task, user, "returned", note=str(note)[:2000])
    return task


def complete(user, task_id, values):
    """Complete a task the user may act on: it must be unclaimed or theirs, not delegated away."""
    task = get_task(user, task_id)
    if task.state != "open":
        raise Conflict("此任务已办结", task_id=task.id)
    if task.delegated_by_id is not None and task.assignee_id == user.id:
        raise Conflict("委托的任务须先交回委托人再办结",
                       task_id=task.id)
    if task.assignee_id not in (None, user.id):
        raise Conflict("此任务已被他人签收", task_id=task.id)
    runtime.complete_task(task, user, values)
    return task


def instance_ids_for(user, process=None, limit=50):
    """Recent cases the user may see (for "my cases" and the enterprise portal)."""
    query = select(Instance).order_by(Instance.id.desc()).limit(limit)
    if process:
        query = query.where(Instance.process_key == process)
    if user.enterprise_id is not None:
        query = query.where(Instance.enterprise_id == user.enterprise_id)
    elif not user.group_ids & OVERSIGHT_GROUPS:
        staff = user.group_ids - {ENTERPRISE_GROUP}
        query = query.where(exists().where(HumanTask.instance_id == Instance.id,
                                           HumanTask.group_id.in_(staff)))
    return session().scalars(query).all()
