"""The OpenAPI 3.1 document of /api/v1, written out so that it says what the views do."""

import re

from flask import current_app

_ERROR = {"$ref": "#/components/responses/Error"}


def _op(summary, tag, responses=None, body=None, params=(), auth=True):
    operation = {"summary": summary, "tags": [tag], "responses": {
        "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR,
        "422": _ERROR, **(responses or {"200": {"description": "OK"}})}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": body}}}
    if params:
        operation["parameters"] = list(params)
    if not auth:
        operation["security"] = []
    return operation


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _path_id(name):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


DATA_BODY = {"type": "object", "properties": {"data": {"type": "object"}},
             "required": ["data"]}


_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _add_undocumented_routes(paths):
    """Every /api/v1 route appears in the document: the ones not described above get a
    generic entry (path parameters typed from their URL converters, the error responses)."""
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = _CONVERTER.sub(r"{\2}", rule.rule[len("/api/v1"):])
        params = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "integer" if conv == "int" else "string"}}
                  for conv, name in _CONVERTER.findall(rule.rule)]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            entry = paths.setdefault(path, {})
            if method.lower() not in entry:
                doc = (current_app.view_functions[rule.endpoint].__doc__ or rule.endpoint)
                body = {"type": "object"} if method in ("POST", "PUT", "PATCH") else None
                entry[method.lower()] = _op(doc.strip().splitlines()[0], rule.endpoint.split(
                    ".")[0], params=params, body=body,
                    auth=not path.startswith(("/verify/", "/complaints", "/openapi")))


def openapi_document():
    task_id = _path_id("task_id")
    paths = {
        "/auth/token": {"post": _op(
            "Exchange a username and password for a bearer token", "auth",
            {"200": {"description": "token", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"token": {"type": "string"},
                                                 "expires_in": {"type": "integer"}}}}}}},
            body={"type": "object", "required": ["username", "password"], "properties": {
                "username": {"type": "string"}, "password": {"type": "string"}}}, auth=False)},
        "/tasks": {"get": _op("Tasks the caller may see, soonest due first", "tasks", params=[
            _query("group", {"type": "string"}, "department id"),
            _query("assignee", {"type": "string", "enum": ["me"]}, "only my tasks"),
            _query("process", {"type": "string"}, "process key"),
            _query("overdue", {"type": "boolean"}, "only overdue (true) or not (false)"),
            _query("enterprise", {"type": "integer"}, "enterprise id"),
            _query("page", {"type": "integer", "minimum": 1}, "page number"),
            _query("per_page", {"type": "integer", "minimum": 1, "maximum": 200}, "page size"),
        ])},
        "/tasks/{task_id}": {"get": _op(
            "A task with its form (fields, types, required, choices, labels)", "tasks",
            params=[task_id])},
        "/tasks/{task_id}/claim": {"post": _op("Claim a task", "tasks", params=[task_id])},
        "/tasks/{task_id}/unclaim": {"post": _op("Release a task", "tasks", params=[task_id])},
        "/tasks/{task_id}/assign": {"post": _op(
            "A group lead assigns a task to a member", "tasks", params=[task_id],
            body={"type": "object", "properties": {"assignee": {"type": "string"}}})},
        "/tasks/{task_id}/delegate": {"post": _op(
            "Delegate a claimed task to a colleague", "tasks", params=[task_id],
            body={"type": "object", "properties": {"delegate": {"type": "string"}}})},
        "/tasks/{task_id}/return": {"post": _op(
            "Return a delegated task to its owner", "tasks", params=[task_id])},
        "/tasks/{task_id}/complete": {"post": _op(
            "Complete a task with form data", "tasks", params=[task_id], body=DATA_BODY)},
        "/processes": {"get": _op("Deployed processes and their versions", "processes")},
        "/processes/{key}/instances": {"post": _op(
            "Start a case with start-form data", "processes",
            {"201": {"description": "the new instance"}}, body=DATA_BODY,
            params=[{"name": "key", "in": "path", "required": True,
                     "schema": {"type": "string"}}])},
        "/instances/{instance_id}": {"get": _op(
            "A case: status, process version, open tasks, history", "instances",
            params=[_path_id("instance_id")])},
    }
    if current_app.config["MODE"] != "production":
        paths["/clock"] = {"get": _op("The virtual clock (demo and test modes)", "clock")}
        paths["/clock/advance"] = {"post": _op(
            "Advance the virtual clock and fire every timer that falls due", "clock",
            body={"type": "object", "required": ["duration"],
                  "properties": {"duration": {"type": "string", "example": "P3D"}}})}

    _add_undocumented_routes(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "盈江县区域公共品牌经营与管理系统 API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "error", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"},
                                   "message": {"type": "string"},
                                   "fields": {"type": "object"}}}}}}}}},
        },
    }
