"""HTTP API against a real engine on temporary SQLite: every route and every client-error path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from brainai_engine.api.app import create_app
from brainai_engine.engine.facade import Engine
from tests.engine.conftest import make_config
from tests.engine.engine_helpers import small_config

API = "/api/v1"
TEXT = (
    "Machine learning is a field of artificial intelligence. Neural networks are machine learning models. "
    "Artificial intelligence systems learn from data, and machine learning needs data."
)


def assert_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details", "request_id"}
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.fixture
def learned(client: TestClient) -> dict:
    response = client.post(f"{API}/learn", json={"text": TEXT, "priority": "high", "context": {"src": "t"}})
    assert response.status_code == 200, response.text
    return response.json()


# --- happy paths -----------------------------------------------------------------------------------


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200


def test_learn_then_search_memories_and_concepts(client: TestClient, learned: dict) -> None:
    assert learned["memories_stored"] >= 1
    assert len(learned["memory_ids"]) == learned["memories_stored"]
    assert learned["processing_time_ms"] >= 0

    found = client.get(f"{API}/memory/search", params={"query": "machine learning", "limit": 5}).json()
    assert found["query"] == "machine learning"
    assert found["results"], found
    assert found["results"][0]["memory"]["id"] in learned["memory_ids"]

    concepts = client.get(f"{API}/concepts/search", params={"query": "learning"}).json()
    assert concepts["results"], concepts
    name = concepts["results"][0]["concept"]["name"]
    concept = client.get(f"{API}/concepts/{name}")
    assert concept.status_code == 200 and concept.json()["name"] == name
    related = client.get(f"{API}/concepts/{name}/related", params={"depth": 2, "limit": 5})
    assert related.status_code == 200
    assert related.json()["concept"] == name


def test_learn_batch(client: TestClient) -> None:
    response = client.post(f"{API}/learn/batch", json={"texts": [TEXT, "Graphs connect concepts."]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["results"]) == 2
    assert body["summary"]["items"] == 2
    assert body["summary"]["memories_stored"] == sum(r["memories_stored"] for r in body["results"])


def test_memory_crud(client: TestClient) -> None:
    created = client.post(
        f"{API}/memory", json={"content": "The capital of France is Paris.", "confidence": 0.9}
    )
    assert created.status_code == 201, created.text
    memory = created.json()
    assert created.headers["location"] == f"{API}/memory/{memory['id']}"
    fetched = client.get(f"{API}/memory/{memory['id']}")
    assert fetched.status_code == 200 and fetched.json()["content"] == "The capital of France is Paris."
    assert client.delete(f"{API}/memory/{memory['id']}").status_code == 204
    assert_error(client.get(f"{API}/memory/{memory['id']}"), 404, "not_found")
    assert_error(client.delete(f"{API}/memory/{memory['id']}"), 404, "not_found")


def test_search_filters_and_sorting(client: TestClient, learned: dict) -> None:
    for sort_by in ("relevance", "confidence", "recency"):
        response = client.get(
            f"{API}/memory/search",
            params={
                "query": "data",
                "sort_by": sort_by,
                "type": "working",
                "min_confidence": "0.5",
                "offset": 0,
            },
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "text",
    [
        "emoji 🧠🚀 memories 👩‍👩‍👧",
        "שלום עולם والعربية أيضا",  # right-to-left scripts
        "combining e\u0301 a\u0308 marks \u200d zero width",
        "surrogate pair \U0001f600 is fine",
    ],
)
def test_unicode_text_is_accepted(client: TestClient, text: str) -> None:
    response = client.post(f"{API}/learn", json={"text": text})
    assert response.status_code == 200, response.text
    query = text.split()[0]
    assert client.get(f"{API}/memory/search", params={"query": query}).status_code == 200
    assert client.get(f"{API}/concepts/search", params={"query": query}).status_code == 200


# --- request bodies --------------------------------------------------------------------------------


def post_raw(client: TestClient, path: str, body: bytes, content_type: str | None = "application/json"):  # type: ignore[no-untyped-def]
    headers = {"content-type": content_type} if content_type else {}
    return client.post(f"{API}{path}", content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"text": "a\\ud800b"}', "invalid_json"),  # lone surrogate escape
        (b'{"text": "\\udc00"}', "invalid_json"),
        (b'{"text": "\xff\xfe"}', "invalid_json"),  # not UTF-8
        (b'{"text": "nul \\u0000 inside"}', "validation_error"),
        (b'{"text": 42}', "validation_error"),
        (b'{"text": null}', "validation_error"),
        (b'{"text": "ok", "bogus": 1}', "validation_error"),
        (b"{}", "validation_error"),
        (b'{"text": "   \\n\\t "}', "validation_error"),
        (b'{"text": ""}', "validation_error"),
        (b'{"text": "ok", "priority": "urgent"}', "validation_error"),
        (b'{"text": "ok", "context": {"k": 1}}', "validation_error"),
        (b'["text"]', "validation_error"),
        (b'"text"', "validation_error"),
    ],
)
def test_learn_rejects_bad_bodies(client: TestClient, body: bytes, code: str) -> None:
    body_json = assert_error(post_raw(client, "/learn", body), 400, code)
    if code == "validation_error":
        assert body_json["details"] and "loc" in body_json["details"][0]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/learn/batch", b'{"texts": []}'),
        ("/learn/batch", b'{"texts": ["ok", " "]}'),
        ("/learn/batch", b'{"texts": "not a list"}'),
        ("/memory", b'{"content": "x", "confidence": 1.5}'),
        ("/memory", b'{"content": "x", "type": "dream"}'),
        ("/memory", b'{"content": "x", "id": "forged"}'),
        ("/memory", b'{"content": "x", "confidence": false}'),  # no coercion of booleans
        ("/memory", b'{"content": "x", "confidence": "0.5"}'),
        ("/learn", b'{"text": 42}'),
    ],
)
def test_other_bodies_validated(client: TestClient, path: str, body: bytes) -> None:
    assert_error(post_raw(client, path, body), 400, "validation_error")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_wrong_content_type(client: TestClient, content_type: str | None) -> None:
    assert_error(
        post_raw(client, "/learn", b'{"text": "hello"}', content_type), 415, "unsupported_media_type"
    )


def test_json_with_utf8_charset_is_fine(client: TestClient) -> None:
    response = post_raw(client, "/learn", b'{"text": "hello"}', "application/json; charset=UTF-8")
    assert response.status_code == 200, response.text


def test_oversize_body_by_content_length(client: TestClient) -> None:
    body = b'{"text": "' + b"a" * (70 * 1024) + b'"}'
    assert_error(post_raw(client, "/learn", body), 413, "payload_too_large")


def test_oversize_body_streamed_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(80):
            yield b"a" * 1024
        yield b'"}'

    response = client.post(f"{API}/learn", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


def test_lying_content_length_is_still_bounded(client: TestClient) -> None:
    # A small declared length does not let a larger body through: the limit is enforced on bytes read.
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "' + b"b" * (65 * 1024) + b'"}'

    response = client.post(
        f"{API}/learn", content=chunks(), headers={"content-type": "application/json", "content-length": "20"}
    )
    assert response.status_code in (400, 413)
    assert response.json()["error"] in ("payload_too_large", "invalid_json")


# --- query strings and path parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"query": ""},
        {"query": "   "},
        {"query": "x" * 1001},
        {"query": "nul\x00byte"},
        {"query": "ok", "limit": "0"},
        {"query": "ok", "limit": "101"},
        {"query": "ok", "limit": "ten"},
        {"query": "ok", "limit": "1.5"},
        {"query": "ok", "offset": "-1"},
        {"query": "ok", "min_confidence": "2"},
        {"query": "ok", "sort_by": "random"},
        {"query": "ok", "type": "dream"},
        {"query": "ok", "unknown": "1"},
    ],
)
def test_memory_search_rejects_bad_queries(client: TestClient, params: dict[str, str]) -> None:
    assert_error(client.get(f"{API}/memory/search", params=params), 400, "validation_error")


@pytest.mark.parametrize(
    "params", [{}, {"query": " "}, {"query": "ok", "limit": "1000"}, {"query": "ok", "x": "1"}]
)
def test_concept_search_rejects_bad_queries(client: TestClient, params: dict[str, str]) -> None:
    assert_error(client.get(f"{API}/concepts/search", params=params), 400, "validation_error")


def test_percent_encoded_invalid_utf8_in_query_is_not_a_500(client: TestClient) -> None:
    for raw in ("%ED%A0%80", "%FF%FE", "%C0%AF"):
        response = client.get(f"{API}/memory/search?query={raw}")
        assert response.status_code < 500, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"depth": "0"},
        {"depth": "6"},
        {"limit": "0"},
        {"min_strength": "-1"},
        {"depth": "deep"},
        {"extra": "1"},
    ],
)
def test_related_rejects_bad_parameters(client: TestClient, learned: dict, params: dict[str, str]) -> None:
    name = client.get(f"{API}/concepts/search", params={"query": "learning"}).json()["results"][0]["concept"][
        "name"
    ]
    assert_error(client.get(f"{API}/concepts/{name}/related", params=params), 400, "validation_error")


def test_unknown_names_and_ids_are_404(client: TestClient) -> None:
    assert_error(client.get(f"{API}/concepts/no-such-concept-xyz"), 404, "not_found")
    assert_error(client.get(f"{API}/concepts/no-such-concept-xyz/related"), 404, "not_found")
    assert_error(client.get(f"{API}/memory/999999999"), 404, "not_found")
    assert_error(client.get(f"{API}/memory/not-a-number"), 404, "not_found")
    for beyond in ("9223372036854775808", "1" + "0" * 40, "0", "-1", "+1", "1_0", "%201", "%D9%A1"):
        assert_error(client.get(f"{API}/memory/{beyond}"), 404, "not_found")
        assert_error(client.delete(f"{API}/memory/{beyond}"), 404, "not_found")
    assert_error(client.get(f"{API}/concepts/%F0%9F%A7%A0"), 404, "not_found")  # emoji name


def test_bad_path_parameters_are_400(client: TestClient) -> None:
    assert_error(client.get(f"{API}/concepts/a%00b"), 400, "validation_error")
    assert_error(client.get(f"{API}/memory/{'9' * 300}"), 400, "validation_error")
    assert_error(client.get(f"{API}/concepts/{'n' * 1001}"), 400, "validation_error")


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert_error(client.get(f"{API}/nothing-here"), 404, "not_found")
    assert_error(client.get("/nothing-here"), 404, "not_found")
    body = assert_error(client.put(f"{API}/learn", json={"text": "x"}), 405, "method_not_allowed")
    assert "POST" in body["details"]["allow"]
    assert_error(client.get(f"{API}/learn"), 405, "method_not_allowed")
    assert_error(client.post(f"{API}/memory/search", json={}), 405, "method_not_allowed")
    assert_error(client.post("/health"), 405, "method_not_allowed")


# --- request ids, auth, metrics, openapi ---------------------------------------------------------


def test_request_id_is_honoured_or_minted(client: TestClient) -> None:
    response = client.get(f"{API}/memory/search", params={"query": " "}, headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    minted = client.get("/health", headers={"X-Request-ID": "bad\x7fid"})
    assert minted.headers["x-request-id"] not in ("", "bad\x7fid")
    ok = client.get("/health")
    assert len(ok.headers["x-request-id"]) >= 16


@pytest.fixture
def auth_client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(engine, small_config(tmp_path / "data", auth_token="s3cret-token"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_bearer_auth(auth_client: TestClient) -> None:
    search = f"{API}/memory/search?query=x"
    assert_error(auth_client.get(search), 401, "unauthorized")
    assert auth_client.get(search).headers["www-authenticate"].startswith("Bearer")
    assert_error(auth_client.get(search, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(auth_client.get(search, headers={"Authorization": "s3cret-token"}), 401)
    assert_error(auth_client.get(search, headers={"Authorization": "Bearer s3cret-token "}), 401)
    assert_error(auth_client.post(f"{API}/learn", json={"text": "x"}), 401)
    assert_error(auth_client.get(f"{API}/unknown"), 401)  # route existence is not revealed
    assert auth_client.get(search, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    for open_path in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert auth_client.get(open_path).status_code == 200, open_path
    assert "bearerAuth" in auth_client.get("/openapi.json").json()["components"]["securitySchemes"]


def test_metrics_names_and_route_templates(client: TestClient, learned: dict) -> None:
    memory_id = learned["memory_ids"][0]
    client.get(f"{API}/memory/{memory_id}")
    client.get(f"{API}/memory/search", params={"query": "machine"})
    client.get(f"{API}/memory/search", params={"query": ""})
    client.get(f"{API}/concepts/search", params={"query": "machine"})
    text = client.get("/metrics").text
    for name in (
        "brain_ai_http_requests_total",
        "brain_ai_http_request_duration_seconds_bucket",
        "brain_ai_memories_total",
        "brain_ai_memory_search_duration_seconds_count",
        "brain_ai_concept_nodes_total",
        "brain_ai_concept_edges_total",
        "brain_ai_learn_bytes_total",
        'brain_ai_instance_info{instance_id="brain-ai-0"}',
    ):
        assert name in text, name
    assert 'route="/api/v1/memory/{memory_id}"' in text
    assert f'/api/v1/memory/{memory_id}"' not in text
    assert 'route="/api/v1/memory/search",status="400"' in text
    memories = next(line for line in text.splitlines() if line.startswith("brain_ai_memories_total "))
    assert float(memories.split()[1]) >= learned["memories_stored"]


def test_openapi_lists_every_route(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    expected = {
        ("post", "/api/v1/learn"),
        ("post", "/api/v1/learn/batch"),
        ("get", "/api/v1/memory/search"),
        ("post", "/api/v1/memory"),
        ("get", "/api/v1/memory/{memory_id}"),
        ("delete", "/api/v1/memory/{memory_id}"),
        ("get", "/api/v1/concepts/search"),
        ("get", "/api/v1/concepts/{name}"),
        ("get", "/api/v1/concepts/{name}/related"),
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    }
    listed = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert listed == expected
    schemas = doc["components"]["schemas"]
    for name in ("LearnRequest", "LearnResult", "MemorySearchResult", "ConceptSearchResult", "Error"):
        assert name in schemas
    params = {p["name"] for p in doc["paths"]["/api/v1/memory/search"]["get"]["parameters"]}
    assert params == {"query", "limit", "offset", "type", "min_confidence", "sort_by"}
    learn = doc["paths"]["/api/v1/learn"]["post"]
    assert learn["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/LearnRequest")
    assert {"200", "400", "413", "415"} <= set(learn["responses"])


def test_ready_is_503_once_engine_closed(tmp_path: Path) -> None:
    config = small_config(tmp_path / "data")
    eng = Engine.open(config)
    with TestClient(create_app(eng, config), raise_server_exceptions=False) as test_client:
        assert test_client.get("/ready").status_code == 200
        eng.close()
        assert_error(test_client.get("/ready"), 503, "not_ready")
        assert test_client.get("/health").status_code == 200


def test_overload_sheds_with_503(engine: Engine, tmp_path: Path) -> None:
    app = create_app(engine, small_config(tmp_path / "data"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.get("/health")  # builds the middleware stack
        edge = app.middleware_stack.app  # type: ignore[union-attr]
        edge.in_flight = edge.max_in_flight  # as if that many requests were being served
        body = assert_error(test_client.get(f"{API}/memory/search", params={"query": "x"}), 503, "overloaded")
        assert body["message"]
        assert test_client.get("/health").status_code == 200  # probes are never shed
        edge.in_flight = 0
        assert test_client.get(f"{API}/memory/search", params={"query": "x"}).status_code == 200


def test_memory_capacity_refuses_with_507_and_stores_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", memory={"capacity": 3})
    eng = Engine.open(config)
    try:
        with TestClient(create_app(eng, config), raise_server_exceptions=False) as test_client:
            ok = test_client.post(f"{API}/learn/batch", json={"texts": ["one text.", "two texts."]})
            assert ok.status_code == 200
            body = assert_error(
                test_client.post(f"{API}/learn/batch", json={"texts": ["three.", "four."]}),
                507,
                "capacity_exceeded",
            )
            assert body["details"] == {"capacity": 3, "stored": 2, "adding": 2}
            assert "memory.capacity" in body["message"]
            assert eng.stats().memories == 2  # refused whole
            assert test_client.post(f"{API}/memory", json={"content": "third"}).status_code == 201
            assert_error(
                test_client.post(f"{API}/memory", json={"content": "fourth"}), 507, "capacity_exceeded"
            )
            assert_error(test_client.post(f"{API}/learn", json={"text": "fifth"}), 507, "capacity_exceeded")
            assert eng.stats().memories == 3
            metrics = test_client.get("/metrics").text
            assert "brain_ai_memory_capacity_refusals_total 3.0" in metrics
            assert (
                "507" in test_client.get("/openapi.json").json()["paths"][f"{API}/learn"]["post"]["responses"]
            )
    finally:
        eng.close()
