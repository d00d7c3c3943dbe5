"""Schemathesis against ``/api/v1/openapi.json``, in-process: no operation of the JSON API
answers a generated request with a 5xx, whoever sends it.

Requests go to the Flask app itself (WSGI), with bearer tokens of seeded users from
different departments, over the cases of ``tests/seeded_world.py`` so that small ids name
real tasks, instances, licences and batches. Both valid and invalid requests are generated
(schemathesis' positive and negative modes); every example is bounded so that the whole
run stays near a minute.
"""

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from seeded_world import build_world

# Who sends the requests: an administrator, a department that acts on cases, an
# enterprise, and nobody at all (no Authorization header).
SENDERS = ("office", "market", "ent-b", None)
EXAMPLES_PER_OPERATION = 25

# Path parameters by name: the seeded objects they may name (world keys, or values).
REAL_IDS = {
    "task_id": ["market_task", "quality_task", "protection_task", "enterprise_task"],
    "instance_id": ["admission_case", "licence_case", "complaint_case", "expulsion_case"],
    "licence_id": ["licence"], "batch_id": ["batch", "spare_batch"], "key_id": ["key_id"],
    "draft_id": ["draft", "spare_draft"], "notice_id": ["notice"],
    "enterprise_id": ["ent_a", "ent_b"], "code": ["code"], "reference": ["reference"],
}
LITERAL_IDS = {
    "key": ["admission_review", "complaint", "expulsion", "licence_grant"],
    "name": ["admission_apply", "complaint_file"], "a": [1], "b": [2], "number": [1, 2],
    "inspection_id": [1],
}


def real_path_parameters(operation, world):
    """A few sets of path parameters naming seeded objects (empty for other operations)."""
    names = [p.name for p in operation.path_parameters]
    if not names:
        return []
    options = {name: [world[k] for k in REAL_IDS[name]] if name in REAL_IDS
               else LITERAL_IDS.get(name, [1]) for name in names}
    widest = max(len(values) for values in options.values())
    return [{name: values[i % len(values)] for name, values in options.items()}
            for i in range(widest)]


def _describe(case, response):
    body = response.text[:300] if response.text else ""
    return (f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"
            f" -> {response.status_code} {body}")


def test_no_generated_request_gets_a_server_error(app, client, api):
    world = build_world(app, client, api)
    app.config["RATELIMIT_ENABLED"] = False
    tokens = {user: api.token(user) for user in SENDERS if user}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = st.one_of(operation.as_strategy(generation_mode=mode), *(
                operation.as_strategy(generation_mode=mode, path_parameters=known)
                for known in real_path_parameters(operation, world)))

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      derandomize=True, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy, sender=st.sampled_from(SENDERS))
            def send(case, sender):
                headers = {"Authorization": f"Bearer {tokens[sender]}"} if sender else {}
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    failures.append(_describe(case, response))

            try:
                send()
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (no parameters, no body).
                assert mode is GenerationMode.NEGATIVE, operation.label

    assert not failures, "\n".join(failures)
