"""``/openapi.json`` describes the API as it answers: the error envelope and statuses, no FastAPI 422,
the upload body of ``POST /v1/analyze``, the key headers as security schemes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.hold import settings_in
from tests.support.servicekit import fake_service

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with fake_service(settings_in(tmp_path_factory.mktemp("openapi"))) as service:
        answer = service.client.get("/openapi.json")
        assert answer.status_code == 200
        return dict(answer.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in document["paths"].items() for m, op in ops.items()]


def test_no_fastapi_422_only_the_error_envelope(document: dict[str, Any]) -> None:
    """Every route with parameters promised 422 ``HTTPValidationError``; the service answers 400."""
    assert "ValidationError" not in json.dumps(document)
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
                assert response["description"].startswith("- `"), (method, path, status)
        if op.get("parameters") or op.get("requestBody"):
            assert "`invalid_request`" in op["responses"]["400"]["description"], (method, path)
        assert "`internal_error`" in op["responses"]["500"]["description"], (method, path)
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message"} <= set(detail["required"])
    assert "details" in detail["properties"]


def test_the_analyze_upload_can_be_sent_from_the_docs(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/analyze"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]
    assert form["properties"]["file"] == {"type": "string", "format": "binary"}
    csv = document["paths"]["/v1/hash-lists/{name}/import"]["post"]["requestBody"]
    assert "text/csv" in csv["content"]


def test_keys_are_security_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["session"]["in"] == "cookie"
    for method, path, op in operations(document):
        if (path.startswith("/v1/") and (method, path) != ("DELETE", "/v1/session")) or path == "/metrics":
            assert {"bearer", "apiKey"} <= {k for s in op["security"] for k in s}, (method, path)
            assert "`unauthorized`" in op["responses"]["401"]["description"], (method, path)


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        (
            "POST",
            "/v1/analyze",
            {
                "413": ["media_too_large", "payload_too_large", "too_many_pixels"],
                "415": ["unsupported_media_type"],
                "422": ["corrupt_media", "empty_media"],
                "429": ["queue_full"],
                "503": ["store_unavailable", "weights_missing"],
                "408": ["request_timeout"],
            },
        ),
        ("GET", "/v1/jobs/{job_id}", {"404": ["job_not_found"]}),
        ("DELETE", "/v1/jobs/{job_id}", {"404": ["job_not_found"]}),
        ("POST", "/v1/jobs/{job_id}/review", {"403": ["forbidden"], "409": ["conflict"]}),
        ("GET", "/v1/appeals/{appeal_id}", {"404": ["appeal_not_found"]}),
        ("DELETE", "/v1/hash-lists/{name}", {"403": ["forbidden"], "404": ["list_not_found"]}),
        ("DELETE", "/v1/keys/{key_id}/data", {"404": ["key_not_found"]}),
        ("GET", "/metrics", {"403": ["forbidden"]}),
        ("GET", "/readyz", {"503": ["not_ready"]}),
    ],
)
def test_each_route_names_the_errors_it_answers(
    document: dict[str, Any], method: str, path: str, codes: dict[str, list[str]]
) -> None:
    responses = document["paths"][path][method.lower()]["responses"]
    for status, names in codes.items():
        for name in names:
            assert f"`{name}`" in responses[status]["description"], (status, name)


def test_the_documented_400_is_what_a_bad_parameter_gets(tmp_path: Path) -> None:
    with fake_service(settings_in(tmp_path)) as service:
        answer = service.client.post("/v1/analyze?frames=0", content=b"x")
        assert answer.status_code == 400
        assert set(answer.json()) == {"error"}
        assert answer.json()["error"]["code"] == "invalid_request"
