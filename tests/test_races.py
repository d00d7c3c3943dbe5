"""Two people acting on the same task at the same moment, as on a real server.

Each contender runs in its own thread with its own ``app.test_client()`` (so its own
request, app context and database session, against the same SQLite file or
PostgreSQL database); a barrier releases them together so that both requests are in
flight at once. Whatever the interleaving, the office must see one winner, one
"somebody else was faster" (409), one history entry, and a case that carries on.
"""

import os
import threading
from collections import Counter

import pytest
from conftest import POSTGRES, add_enterprise_logins
from sqlalchemy import text

from engine import accounts, runtime
from engine.models import Instance
from web.extensions import db

# CI runs 1,000 rounds (.ci/run sets RACE_ROUNDS); a developer's `make test` runs 30. Every
# round checks the winner, the history and the inbox against the engine; every
# FULL_EVERY-th round also carries the case on to its end.
ROUNDS = int(os.environ.get("RACE_ROUNDS", "30"))
FULL_EVERY = max(1, ROUNDS // 30)

APPLICATION = {
    "enterprise_name": "盈江县测试茶厂",
    "kind": "processor",
    "products": ["tea"],
    "base_location": "平原镇",
    "base_area_mu": "60",
    "registered_capital_fen": 80_000_000,
    "employees": 20,
    "contact_name": "刘洋",
    "contact_phone": "13700000000",
    "innovation": "古树茶初制工艺",
    "channels": "电商平台",
    "experience": "五年",
    "finance": "年营业额 300 万元",
    "certifications": "有机产品 OP-2025-01",
}

COMPLETE = {"completeness_decision": "complete"}
REJECT = {"completeness_decision": "reject", "completeness_comment": "材料与事实不符"}
SUPPLEMENT = {"completeness_decision": "supplement", "supplement_request": "请补充检测报告"}

# Who does each task when a case is carried on to its end, and with what.
FOLLOW_UP = {
    "completeness_check": ("market", COMPLETE),
    "quality_review": ("quality", {"quality_ok": True, "quality_comment": "抽检合格"}),
    "finance_review": ("finance", {"finance_ok": True, "capital_verified_fen": 80_000_000,
                                   "finance_comment": "资金充足"}),
    "scoring": ("market", {"score_innovation": 20, "score_channels": 20,
                           "score_experience": 20, "score_finance": 20}),
    "pay_deposit": (None, {"paid_amount_fen": 5_000_000, "paid_on": "2026-12-01",
                           "payment_reference": "YJ-RACE"}),
    "confirm_deposit": ("finance", {"deposit_received": True, "deposit_comment": "已到账"}),
    "supplement": (None, {"supplement_note": "已补充检测报告"}),
}


@pytest.fixture
def enterprises(app):
    """One enterprise login per round (an admitted enterprise cannot apply again)."""
    with app.app_context():
        accounts.create_user("market-b", "demo", "市场开发部 王芳", groups=["market"])
        db.session.commit()
    return add_enterprise_logins(app, "ent-r", ROUNDS, "盈江县测试茶厂{}")


class Contenders:
    """Send several API requests at the same instant, each from its own thread and client."""

    def __init__(self, app, api):
        self.app = app
        self.api = api

    def run(self, *requests):
        """``requests``: (user, method, path, json). Returns [(status, body)] in that order."""
        barrier = threading.Barrier(len(requests))
        results = [None] * len(requests)
        headers = [{"Authorization": f"Bearer {self.api.token(user)}"}
                   for user, *_rest in requests]

        def contender(i, method, path, body):
            client = self.app.test_client()
            try:
                barrier.wait(timeout=30)
                response = client.open(f"/api/v1{path}", method=method, json=body,
                                       headers=headers[i])
                results[i] = (response.status_code, response.get_json())
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results[i] = ("exception", repr(exc))

        threads = [threading.Thread(target=contender, args=(i, method, path, body))
                   for i, (_user, method, path, body) in enumerate(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a request hung"
        return results


@pytest.fixture
def contenders(app, api):
    return Contenders(app, api)


def apply(api, enterprise):
    return api.post("/processes/admission_review/instances", enterprise,
                    {"data": dict(APPLICATION, enterprise_name=f"{enterprise} 茶厂")},
                    expect=201)["id"]


def case(api, instance_id):
    return api.get(f"/instances/{instance_id}", "office")


def open_task(api, instance_id, spec):
    found = [t for t in case(api, instance_id)["open_tasks"] if t["task"] == spec]
    assert len(found) == 1, (spec, found)
    return found[0]


def assert_consistent(api, instance_id):
    """No task is open twice, and each open task is in its department's inbox exactly once."""
    body = case(api, instance_id)
    specs = [t["task"] for t in body["open_tasks"]]
    assert len(specs) == len(set(specs)), specs
    for task in body["open_tasks"]:
        user = task["group"]  # each demo department's lead is named after it
        if user == "enterprise":
            continue
        # Filtered by the case's enterprise: after many rounds a department's inbox holds
        # more open tasks than one page.
        inbox = api.get(f"/tasks?per_page=200&enterprise={body['enterprise_id']}", user)
        listed = [t for t in inbox["items"]
                  if t["instance_id"] == instance_id and t["task"] == task["task"]]
        assert len(listed) == 1, (task, listed)
    # The inbox rows and timer rows are the engine's state, read from the workflow itself.
    with api.client.application.app_context():
        assert runtime.projection_problems(db.session.get(Instance, instance_id)) == []
        db.session.remove()
    return body


def carry_on_now(n):
    return n % FULL_EVERY == 0


def carry_on_to_the_end(api, instance_id, enterprise):
    """Complete whatever is open, the ordinary way, until the case is finished."""
    for _ in range(12):
        body = assert_consistent(api, instance_id)
        if body["status"] != "running":
            assert body["open_tasks"] == []
            return body
        for task in body["open_tasks"]:
            user, data = FOLLOW_UP[task["task"]]
            api.post(f"/tasks/{task['id']}/complete", user or enterprise, {"data": data})
    raise AssertionError(f"case {instance_id} did not finish: {case(api, instance_id)}")


def completed_entries(body, spec):
    return [h for h in body["history"] if h["kind"] == "completed" and h["task"] == spec]


def outcome(results):
    """The statuses, sorted (a request that raised shows as "exception")."""
    return sorted((status for status, _body in results), key=str)


# -- two completions of one task ---------------------------------------------------------------

@pytest.mark.parametrize("second_user", ["market-b", "market"],
                         ids=["two-users", "same-user-twice"])
def test_simultaneous_completions_have_one_winner(api, contenders, enterprises, second_user):
    winners = Counter()
    for n, enterprise in enumerate(enterprises):
        instance_id = apply(api, enterprise)
        task = open_task(api, instance_id, "completeness_check")
        path = f"/tasks/{task['id']}/complete"
        # The two clerks come to different conclusions; only the winner's may count.
        results = contenders.run(("market", "POST", path, {"data": COMPLETE}),
                                 (second_user, "POST", path, {"data": REJECT}))

        assert outcome(results) == [200, 409], (n, results)
        loser = next(body for status, body in results if status == 409)
        assert loser["error"]["code"] == "conflict"
        first_won = results[0][0] == 200
        winners["first" if first_won else "second"] += 1
        # "此任务已办结" when the loser came after; "另一个操作同时修改…" when they overlapped.
        winners[loser["error"]["message"]] += 1

        body = case(api, instance_id)
        done = completed_entries(body, "completeness_check")
        assert len(done) == 1, (n, body["history"])
        assert done[0]["actor"] == ("market" if first_won else second_user)
        assert done[0]["detail"]["data"]["completeness_decision"] == (
            "complete" if first_won else "reject")
        if first_won:
            assert sorted(t["task"] for t in body["open_tasks"]) == [
                "finance_review", "quality_review"]
            assert body["enterprise_status"] == "applying"
        else:
            assert body["open_tasks"] == [] and body["status"] == "completed"
            assert body["enterprise_status"] == "rejected"
            assert body["enterprise_status_reason"] == "材料与事实不符"

        assert_consistent(api, instance_id)
        if not carry_on_now(n):
            continue
        final = carry_on_to_the_end(api, instance_id, enterprise)
        assert final["enterprise_status"] == ("admitted" if first_won else "rejected")
        assert len(completed_entries(final, "completeness_check")) == 1
        if first_won:
            effects = [h["detail"]["effect"] for h in final["history"] if h["kind"] == "effect"]
            assert effects == ["application_opened", "deposit_required", "admitted"]
    print(f"completion race: {dict(winners)}")


def test_simultaneous_completions_of_the_two_parallel_reviews(api, contenders, enterprises):
    """Quality and finance finish their reviews at the same moment: scoring opens once."""
    for n, enterprise in enumerate(enterprises[:15]):
        instance_id = apply(api, enterprise)
        check = open_task(api, instance_id, "completeness_check")
        api.post(f"/tasks/{check['id']}/complete", "market", {"data": COMPLETE})
        quality = open_task(api, instance_id, "quality_review")
        finance = open_task(api, instance_id, "finance_review")

        results = contenders.run(
            ("quality", "POST", f"/tasks/{quality['id']}/complete",
             {"data": FOLLOW_UP["quality_review"][1]}),
            ("finance", "POST", f"/tasks/{finance['id']}/complete",
             {"data": FOLLOW_UP["finance_review"][1]}))

        # Both may succeed one after the other; if they truly overlapped, the one that
        # lost is told to retry (409) and has changed nothing.
        assert set(outcome(results)) <= {200, 409} and 200 in outcome(results), (n, results)
        for (status, _body), spec, user in zip(results, ("quality_review", "finance_review"),
                                               ("quality", "finance"), strict=True):
            if status == 409:
                assert len(completed_entries(case(api, instance_id), spec)) == 0
                retry = open_task(api, instance_id, spec)
                api.post(f"/tasks/{retry['id']}/complete", user,
                         {"data": FOLLOW_UP[spec][1]})

        body = assert_consistent(api, instance_id)
        assert [t["task"] for t in body["open_tasks"]] == ["scoring"], (n, body["open_tasks"])
        assert len(completed_entries(body, "quality_review")) == 1
        assert len(completed_entries(body, "finance_review")) == 1
        assert carry_on_to_the_end(api, instance_id, enterprise)["enterprise_status"] == \
            "admitted"


# -- two claims of one task --------------------------------------------------------------------

def test_simultaneous_claims_have_one_winner(api, contenders, enterprises):
    for n, enterprise in enumerate(enterprises):
        instance_id = apply(api, enterprise)
        task = open_task(api, instance_id, "completeness_check")
        path = f"/tasks/{task['id']}/claim"
        results = contenders.run(("market", "POST", path, {}), ("market-b", "POST", path, {}))

        assert outcome(results) == [200, 409], (n, results)
        winner = "market" if results[0][0] == 200 else "market-b"
        loser = "market-b" if winner == "market" else "market"
        assert next(body for status, body in results if status == 200)["assignee"] == winner

        body = case(api, instance_id)
        claims = [h for h in body["history"] if h["kind"] == "claimed"]
        assert [h["actor"] for h in claims] == [winner], (n, claims)
        assert open_task(api, instance_id, "completeness_check")["assignee"] == winner
        # The loser cannot complete it; the winner can, and the case goes on.
        api.post(f"/tasks/{task['id']}/complete", loser, {"data": COMPLETE}, expect=409)
        api.post(f"/tasks/{task['id']}/complete", winner, {"data": REJECT})
        final = assert_consistent(api, instance_id)
        assert final["enterprise_status"] == "rejected" and final["status"] == "completed"


def test_same_user_claiming_twice_at_once_is_recorded_once(api, contenders, enterprises):
    for n, enterprise in enumerate(enterprises[:15]):
        instance_id = apply(api, enterprise)
        task = open_task(api, instance_id, "completeness_check")
        path = f"/tasks/{task['id']}/claim"
        results = contenders.run(("market", "POST", path, {}), ("market", "POST", path, {}))

        # Sequential: both see their own claim (200, 200); overlapping: one 409.
        assert outcome(results) in ([200, 200], [200, 409]), (n, results)
        body = case(api, instance_id)
        assert [h["actor"] for h in body["history"] if h["kind"] == "claimed"] == ["market"]
        assert open_task(api, instance_id, "completeness_check")["assignee"] == "market"
        api.post(f"/tasks/{task['id']}/complete", "market", {"data": REJECT})


# -- a deadline passing while the enterprise answers -------------------------------------------

def at_supplement(api, enterprise):
    """A case sent back to the enterprise, its 10-working-day deadline running."""
    instance_id = apply(api, enterprise)
    check = open_task(api, instance_id, "completeness_check")
    api.post(f"/tasks/{check['id']}/complete", "market", {"data": SUPPLEMENT})
    supplement = open_task(api, instance_id, "supplement")
    assert supplement["group"] == "enterprise"
    return instance_id, supplement


def answer_and_advance(contenders, enterprise, supplement):
    """The enterprise submits its supplement while ``it`` moves the clock past the deadline."""
    return contenders.run(
        (enterprise, "POST", f"/tasks/{supplement['id']}/complete",
         {"data": FOLLOW_UP["supplement"][1]}),
        ("it", "POST", "/clock/advance", {"duration": "P30D"}))


def test_deadline_firing_while_the_supplement_is_submitted(api, contenders, enterprises):
    outcomes = Counter()
    for n, enterprise in enumerate(enterprises[:ROUNDS]):
        instance_id, supplement = at_supplement(api, enterprise)

        results = answer_and_advance(contenders, enterprise, supplement)
        (answer, answer_body), (advance, advance_body) = results
        assert answer in (200, 409), (n, results)
        # The advance itself may come back 409 when its timer run lost the race; that it
        # then leaves other due timers unfired is test_clock_advance_..._other_cases.
        assert advance in (200, 409), (n, results)
        outcomes[(answer, advance)] += 1

        body = assert_consistent(api, instance_id)
        kinds = [h["kind"] for h in body["history"]]
        effects = [h["detail"]["effect"] for h in body["history"] if h["kind"] == "effect"]
        answered = completed_entries(body, "supplement")
        if answer == 200:
            # Back with the market department; the deadline no longer applies.
            assert len(answered) == 1
            assert [t["task"] for t in body["open_tasks"]] == ["completeness_check"]
            assert body["status"] == "running"
            assert body["enterprise_status"] == "applying"
            assert "lapsed" not in effects
            # (The advance may fire other cases' timers: this case's history has none.)
            assert "timer" not in kinds, (n, body["history"])
            if carry_on_now(n):
                final = carry_on_to_the_end(api, instance_id, enterprise)
                assert final["enterprise_status"] == "admitted"
        else:
            # The deadline won: the answer came too late and changed nothing.
            assert answer_body["error"]["code"] == "conflict"
            assert advance == 200 and advance_body["fired"] >= 1, (n, results)
            assert answered == []
            assert body["status"] == "completed" and body["open_tasks"] == []
            assert body["enterprise_status"] == "lapsed"
            assert effects == ["application_opened", "lapsed"]
            assert kinds.count("timer") == 1
        # Nothing of this case is left waiting on a timer (assert_consistent compared the
        # timer rows with the workflow's); every FULL_EVERY-th round proves it by firing.
        if carry_on_now(n):
            api.post("/clock/advance", "it", {"duration": "P30D"})
            later = [h["kind"] for h in case(api, instance_id)["history"]]
            assert later.count("timer") == kinds.count("timer"), (n, later)
    print(f"timer race (answer, advance) statuses: {dict(outcomes)}")


# The timer run that loses a race, replayed deterministically: another request commits a
# step of the case between the timer run loading the case and saving it.

@pytest.mark.skipif(POSTGRES, reason="the timer run holds the case's row lock on PostgreSQL: "
                    "another step waits for it instead of committing in between")
def test_clock_advance_still_fires_the_other_cases(api, enterprises, monkeypatch):
    contested, _task = at_supplement(api, enterprises[0])
    api.post("/clock/advance", "it", {"duration": "P1D"})
    bystander, _task = at_supplement(api, enterprises[1])  # its deadline falls a day later
    before = case(api, contested)["history"]

    original = runtime._restore
    bumped = []

    def another_step_commits_meanwhile(instance):
        if instance.id == contested and not bumped:
            bumped.append(instance.id)
            with db.engine.begin() as other_request:
                other_request.execute(
                    text("UPDATE instances SET lock_version = lock_version + 1 WHERE id = :id"),
                    {"id": contested})
        return original(instance)

    monkeypatch.setattr(runtime, "_restore", another_step_commits_meanwhile)
    response = api.client.post("/api/v1/clock/advance", json={"duration": "P30D"},
                               headers={"Authorization": f"Bearer {api.token('it')}"})
    monkeypatch.undo()

    assert bumped == [contested]
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["fired"] >= 1
    assert case(api, bystander)["enterprise_status"] == "lapsed"
    # The contested case was not half-fired: either untouched or lapsed, recorded once.
    after = case(api, contested)
    assert after["history"] == before or after["enterprise_status"] == "lapsed"


@pytest.mark.skipif(POSTGRES, reason="PostgreSQL row locks on the timer rows prevent this")
def test_timer_run_does_not_record_a_deadline_the_answer_beat(api, app, enterprises,
                                                              monkeypatch):
    """The supplement is committed after the timer run found the deadline due but before it
    restored the workflow: nothing fires, and the case history must not say the deadline did."""
    enterprise = enterprises[0]
    instance_id, supplement = at_supplement(api, enterprise)
    token = api.token(enterprise)
    original = runtime._restore
    answered = []

    def enterprise_answers_meanwhile(instance):
        # The answer's own request restores the case too: only the timer run's call answers.
        if instance.id == instance_id and not answered:
            answered.append(None)
            response = app.test_client().post(
                f"/api/v1/tasks/{supplement['id']}/complete",
                json={"data": FOLLOW_UP["supplement"][1]},
                headers={"Authorization": f"Bearer {token}"})
            answered[0] = response.status_code
        return original(instance)

    monkeypatch.setattr(runtime, "_restore", enterprise_answers_meanwhile)
    advance = api.post("/clock/advance", "it", {"duration": "P30D"})
    monkeypatch.undo()

    assert answered == [200]
    body = case(api, instance_id)
    assert [t["task"] for t in body["open_tasks"]] == ["completeness_check"]
    assert body["enterprise_status"] == "applying"
    assert [h["kind"] for h in body["history"]].count("timer") == 0, body["history"]
    assert advance["fired"] == 0
