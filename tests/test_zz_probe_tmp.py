import traceback
from engine import runtime
import test_races as tr
from test_races import contenders, enterprises  # noqa

def test_probe(api, contenders, enterprises, monkeypatch):
    orig = runtime.fire_timers
    def wrapped(*a, **k):
        try:
            return orig(*a, **k)
        except Exception:
            print("FIRE_TIMERS RAISED:\n" + traceback.format_exc())
            raise
    monkeypatch.setattr(runtime, "fire_timers", wrapped)
    import web.errors as we
    for n, enterprise in enumerate(enterprises[:10]):
        iid = tr.apply(api, enterprise)
        check = tr.open_task(api, iid, "completeness_check")
        api.post(f"/tasks/{check['id']}/complete", "market", {"data": tr.SUPPLEMENT})
        sup = tr.open_task(api, iid, "supplement")
        res = contenders.run((enterprise, "POST", f"/tasks/{sup['id']}/complete", {"data": {"supplement_note": "x"}}),
                             ("it", "POST", "/clock/advance", {"duration": "P30D"}))
        body = tr.case(api, iid)
        print(n, [r[0] for r in res], res[1][1], body["status"], body["enterprise_status"], [t["task"] for t in body["open_tasks"]], [h["kind"] for h in body["history"]])
        if body["status"] == "running":
            api.post(f"/tasks/{tr.open_task(api, iid, 'completeness_check')['id']}/complete", "market", {"data": tr.REJECT})
