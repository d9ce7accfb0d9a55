from __future__ import annotations

import pytest

PATHS = {
    "/api/v1/incidents/": {"get"},
    "/api/v1/incidents/{number}/": {"get", "patch"},
    "/api/v1/incidents/{number}/assign/": {"post"},
    "/api/v1/incidents/{number}/resolve/": {"post"},
    "/api/v1/incidents/{number}/posts/": {"get"},
    "/api/v1/incidents/{number}/events/": {"get"},
    "/api/v1/incidents/{number}/replies/": {"get", "post"},
    "/api/v1/posts/": {"get"},
    "/api/v1/posts/{id}/": {"get"},
    "/api/v1/posts/{id}/promote/": {"post"},
    "/api/v1/posts/{id}/label/": {"post"},
    "/api/v1/replies/": {"get"},
    "/api/v1/replies/{id}/": {"get"},
    "/api/v1/services/": {"get"},
    "/api/v1/services/{slug}/": {"get"},
    "/api/v1/channels/": {"get"},
    "/api/v1/channels/{slug}/": {"get"},
    "/api/v1/ingest/{slug}/": {"post"},
    "/api/v1/reports/sla/": {"get"},
    "/api/v1/sla/policies/": {"get", "post"},
    "/api/v1/sla/policies/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/sla/calendars/": {"get", "post"},
    "/api/v1/sla/calendars/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/itsm-links/": {"get"},
    "/api/v1/itsm-links/{id}/": {"get"},
    "/api/v1/itsm-links/{id}/retry/": {"post"},
    "/api/v1/itsm/{slug}/webhook/": {"post"},
    "/api/v1/itsm-connections/": {"get", "post"},
    "/api/v1/itsm-connections/{slug}/": {"get", "put", "patch", "delete"},
}


@pytest.fixture
def schema(agent_api) -> dict:
    response = agent_api.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_lists_every_endpoint(schema):
    assert {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items()} == PATHS


def test_schema_documents_the_ingest_endpoint(schema):
    operation = schema["paths"]["/api/v1/ingest/{slug}/"]["post"]

    assert "security" not in operation
    assert set(operation["responses"]) == {"202", "400", "401", "413", "429"}
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IngestPayloadRequest"
    }
    assert [(p["in"], p["name"], p["required"]) for p in operation["parameters"]] == [
        ("header", "X-SocialITSM-Signature", True),
        ("path", "slug", True),
    ]
    assert schema["components"]["schemas"]["IngestPayloadRequest"] == {
        "oneOf": [
            {"$ref": "#/components/schemas/InboundPostRequest"},
            {"$ref": "#/components/schemas/InboundPostBatchRequest"},
        ]
    }


def test_schema_documents_incident_filters(schema):
    names = {p["name"] for p in schema["paths"]["/api/v1/incidents/"]["get"]["parameters"]}

    assert names == {
        "state",
        "open",
        "priority",
        "service",
        "assignee",
        "assignment_group",
        "opened_after",
        "opened_before",
        "q",
        "ordering",
        "page",
    }


def test_docs_render_from_local_static_files(agent_api):
    response = agent_api.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode().lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    for cdn in ("cdn", "jsdelivr", "unpkg"):
        assert cdn not in html


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_schema_and_docs_need_an_agent(api, outsider, path):
    assert api.get(path).status_code == 401
    api.force_authenticate(outsider)
    assert api.get(path).status_code == 403
