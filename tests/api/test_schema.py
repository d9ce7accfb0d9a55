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
    "/api/v1/incidents/{number}/broadcasts/": {"get", "post"},
    "/api/v1/incidents/{number}/broadcasts/{broadcast_id}/": {"get", "patch"},
    "/api/v1/incidents/{number}/broadcasts/{broadcast_id}/confirm/": {"post"},
    "/api/v1/incidents/{number}/broadcasts/{broadcast_id}/discard/": {"post"},
    "/api/v1/incidents/{number}/status-posts/": {"get", "post"},
    "/api/v1/incidents/major/": {"post"},
    "/api/v1/incidents/{number}/link/": {"post"},
    "/api/v1/incidents/{number}/unlink/": {"post"},
    "/api/v1/incidents/{number}/merge/": {"post"},
    "/api/v1/incidents/bulk/": {"post"},
    "/api/v1/saved-views/": {"get", "post"},
    "/api/v1/saved-views/{id}/": {"get", "delete"},
    "/api/v1/incidents/{number}/unmerge/": {"post"},
    "/api/v1/incidents/{number}/affected/": {"get"},
    "/api/v1/incidents/{number}/spike/": {"get"},
    "/api/v1/posts/": {"get"},
    "/api/v1/posts/{id}/": {"get"},
    "/api/v1/posts/{id}/promote/": {"post"},
    "/api/v1/posts/{id}/label/": {"post"},
    "/api/v1/posts/{id}/erase-author/": {"post"},
    "/api/v1/replies/": {"get"},
    "/api/v1/replies/{id}/": {"get"},
    "/api/v1/replies/{id}/retry/": {"post"},
    "/api/v1/replies/{id}/cancel/": {"post"},
    "/api/v1/services/": {"get"},
    "/api/v1/services/{slug}/": {"get", "patch"},
    "/api/v1/channels/": {"get"},
    "/api/v1/channels/{slug}/": {"get", "patch"},
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
    "/api/v1/notifications/": {"get"},
    "/api/v1/notifications/read-all/": {"post"},
    "/api/v1/notifications/{id}/": {"get"},
    "/api/v1/notifications/{id}/read/": {"post"},
    "/api/v1/reports/sla/incidents/": {"get"},
    "/api/v1/incidents/{number}/notes/": {"get", "post"},
    "/api/v1/reply-templates/": {"get", "post"},
    "/api/v1/reply-templates/{id}/": {"get", "put", "patch", "delete"},
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
        "search",
        "view",
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


@pytest.mark.parametrize("command", ["retry", "cancel"])
def test_schema_documents_the_reply_commands(schema, command):
    operation = schema["paths"][f"/api/v1/replies/{{id}}/{command}/"]["post"]

    assert "requestBody" not in operation
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "409", "429"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Reply"
    }
    assert operation["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    reply = schema["components"]["schemas"]["Reply"]["properties"]
    assert (reply["next_attempt_at"]["format"], reply["next_attempt_at"]["nullable"]) == ("date-time", True)
    assert "canceled" in schema["components"]["schemas"]["ReplyStatusEnum"]["enum"]


def test_schema_is_valid_openapi(schema):
    from drf_spectacular.validation import validate_schema
    from jsonschema import ValidationError

    try:
        validate_schema(schema)
    except ValidationError as exc:
        pytest.fail(f"not a valid OpenAPI 3 document: {exc.message} at {list(exc.absolute_path)}")
    # The validator is strict enough to notice: an operation without its responses is refused.
    path, operations = next(iter(schema["paths"].items()))
    method = next(m for m in operations if m != "parameters")
    broken = {**schema, "paths": {path: {method: {k: v for k, v in operations[method].items() if k != "responses"}}}}
    with pytest.raises(ValidationError):
        validate_schema(broken)


def _operations(schema: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): operation
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method != "parameters"
    }


def test_every_agent_operation_documents_401_and_403(schema):
    signed = {"/api/v1/ingest/{slug}/", "/api/v1/itsm/{slug}/webhook/"}
    missing = {
        (method, path): sorted({"401", "403"} - set(operation["responses"]))
        for (method, path), operation in _operations(schema).items()
        if path not in signed and not {"401", "403"} <= set(operation["responses"])
    }

    assert missing == {}


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("get", "/api/v1/incidents/", {"200", "400", "401", "403", "404", "429"}),
        ("get", "/api/v1/incidents/{number}/", {"200", "401", "403", "404", "429"}),
        ("patch", "/api/v1/incidents/{number}/", {"200", "400", "401", "403", "404", "412", "429"}),
        ("get", "/api/v1/services/", {"200", "401", "403", "404", "429"}),
        (
            "post",
            "/api/v1/incidents/{number}/broadcasts/{broadcast_id}/confirm/",
            {"200", "400", "401", "403", "404", "409", "429"},
        ),
        ("get", "/api/v1/reports/sla/", {"200", "400", "401", "403", "429"}),
        ("delete", "/api/v1/sla/policies/{id}/", {"204", "401", "403", "404", "429"}),
        ("post", "/api/v1/itsm/{slug}/webhook/", {"202", "400", "401", "404", "413", "429"}),
    ],
)
def test_operations_list_their_error_answers(schema, method, path, codes):
    assert set(schema["paths"][path][method]["responses"]) == codes


def test_error_answers_have_a_shape(schema):
    responses = schema["paths"]["/api/v1/incidents/{number}/"]["get"]["responses"]

    assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["properties"]["detail"]["type"] == "string"


def test_the_ingest_slug_without_slash_is_not_a_second_endpoint(schema):
    assert [path for path in schema["paths"] if path.startswith("/api/v1/ingest/")] == ["/api/v1/ingest/{slug}/"]


def test_fields_that_may_be_empty_are_not_declared_uris(schema):
    components = schema["components"]["schemas"]

    assert components["Post"]["properties"]["url"] == {
        "type": "string",
        "readOnly": True,
        "description": "The post on its network, as the network gave it: may be empty, not always a URI.",
    }
    assert "format" not in components["Channel"]["properties"]["base_url"]


def test_post_label_enum_includes_the_empty_label(schema):
    components = schema["components"]["schemas"]
    label = components["Post"]["properties"]["label"]

    assert label["oneOf"] == [{"$ref": "#/components/schemas/LabelEnum"}, {"$ref": "#/components/schemas/BlankEnum"}]
    assert components["LabelEnum"]["enum"] == ["complaint", "not_complaint"]
    assert components["BlankEnum"]["enum"] == [""]


def test_schema_documents_the_details_of_a_post(schema):
    post = schema["components"]["schemas"]["Post"]
    assert post["properties"]["details"]["readOnly"] is True
    assert post["properties"]["details"]["items"] == {"$ref": "#/components/schemas/PostDetailItem"}
    item = schema["components"]["schemas"]["PostDetailItem"]
    assert set(item["properties"]) == {"kind", "text", "url"}
    assert item["properties"]["kind"]["allOf"] == [{"$ref": "#/components/schemas/PostDetailItemKindEnum"}]
    kinds = schema["components"]["schemas"]["PostDetailItemKindEnum"]["enum"]
    assert kinds == ["quote", "poll", "alt_text", "media", "link", "crosspost"]


def test_schema_documents_the_major_incidents_of_the_sla_report(schema):
    components = schema["components"]["schemas"]
    report = components["SlaReport"]["properties"]["major_incidents"]
    assert report["items"] == {"$ref": "#/components/schemas/SlaReportMajor"}
    major = components["SlaReportMajor"]
    assert set(major["properties"]) == {
        "number",
        "short_description",
        "service",
        "state",
        "opened_at",
        "children",
        "first_post_at",
        "minutes_to_major",
        "minutes_to_first_broadcast",
        "posters",
        "answered",
        "unanswered",
    }
    assert major["properties"]["minutes_to_first_broadcast"]["nullable"] is True
    assert "major_incidents" in components["SlaReport"]["required"]


def test_schema_components_carry_their_own_descriptions_only(schema):
    """A serializer is described by the first docstring in its ancestry short of DRF's: the
    shared output bases (socialitsm.api.representation) must not lend theirs to every shape."""
    from socialitsm.api import representation

    for base in (representation.PlannedRepresentation, representation.Serializer, representation.ModelSerializer):
        assert base.__doc__ is None
    described = {name: component.get("description", "") for name, component in schema["components"]["schemas"].items()}
    assert "Incident" in described and "Post" in described
    assert not [name for name, text in described.items() if "to_representation" in text]
