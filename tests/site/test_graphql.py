"""/graphql: the gallery and templates through the schema and over HTTP, and every limit of
SECURITY.md ("GraphQL in production") refused before any resolver runs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from graphql import build_schema as build_sdl_schema
from graphql_server.exceptions import GraphQLValidationError
from werkzeug.test import TestResponse

from loopmark.records.gallery import GalleryEntry
from loopmark.service.gallery import InMemoryGallery
from loopmark.site.graphql import (
    MAX_ALIASES,
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_PAGE_SIZE,
    GalleryContext,
    build_schema,
    checked_document,
    decode_cursor,
    encode_cursor,
    execute_checked,
)
from loopmark.web import links
from tests.site.conftest import (
    MakeApp,
    json_object,
    render_service,
    render_via_api,
    site_services,
)

PAGE_QUERY = """
query Page($first: Int, $after: String) {
  gallery(first: $first, after: $after) {
    edges { cursor node { key caption template { id name } gifUrl mp4Url posterUrl cardUrl
                          shareUrl width height createdAt } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}
"""
KEYS_QUERY = "query($first: Int, $after: String) { gallery(first: $first, after: $after) "
KEYS_QUERY += "{ edges { node { key } } pageInfo { hasNextPage endCursor } } }"


def curate(app: Flask, captions: list[str]) -> list[str]:
    """Render each caption on the small template through the site, then add the done render
    to the gallery as the admin does; the keys in order."""
    client = app.test_client()
    keys = []
    for caption in captions:
        key = render_via_api(client, caption)["key"]
        record = render_service(app).records.get(key)
        assert record is not None
        site_services(app).gallery.add(record)
        keys.append(key)
    return keys


def post(
    client: FlaskClient, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> TestResponse:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return client.post("/graphql", json=body, **kw)


def gallery_keys(client: FlaskClient, first: int = MAX_PAGE_SIZE) -> list[str]:
    response = post(client, KEYS_QUERY, {"first": first})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert "errors" not in body, body
    return [edge["node"]["key"] for edge in body["data"]["gallery"]["edges"]]


class CountingGallery:
    """The app's real gallery, counting how often a resolver reads it."""

    def __init__(self, inner: InMemoryGallery) -> None:
        self.inner = inner
        self.calls = 0

    def page(self, offset: int, limit: int) -> tuple[tuple[GalleryEntry, ...], bool]:
        self.calls += 1
        return self.inner.page(offset, limit)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def counted(app: Flask) -> Iterator[CountingGallery]:
    services = site_services(app)
    counting = CountingGallery(services.gallery)
    services.gallery = counting  # type: ignore[assignment]
    yield counting
    services.gallery = counting.inner


@pytest.fixture
def curated(app: Flask) -> list[str]:
    return curate(app, [f"Gallery loop {n}" for n in range(5)])


@pytest.fixture
def debug_client(make_app: MakeApp) -> FlaskClient:
    return make_app(LOOPMARK_DEBUG="1").test_client()


def errors_of(response: TestResponse) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = json_object(response)
    assert body.get("data") is None, body
    errors: list[dict[str, Any]] = body["errors"]  # GraphQL's response format
    return errors


def codes(response: Any) -> set[str]:
    return {error.get("extensions", {}).get("code", "") for error in errors_of(response)}


# -- the schema, executed directly -------------------------------------------------------------


def test_schema_lists_entries_with_media_urls_and_template(app: Flask, curated: list[str]) -> None:
    with app.test_request_context():
        context = GalleryContext.current()
        result = build_schema().execute(PAGE_QUERY, context_value=context)
        assert result.errors is None, result.errors
        expected = {key: links.media_urls(key) for key in curated}
    gallery = result.data["gallery"]
    nodes = [edge["node"] for edge in gallery["edges"]]
    assert [node["key"] for node in nodes] == curated
    first = nodes[0]
    assert first["caption"] == "Gallery loop 0"
    assert first["template"] == {
        "id": "small",
        "name": render_service(app).catalog.get("small").name,
    }
    assert first["gifUrl"] == expected[curated[0]]["gif"]
    assert first["mp4Url"] == expected[curated[0]]["mp4"]
    assert first["posterUrl"] == expected[curated[0]]["poster"]
    assert first["cardUrl"] == expected[curated[0]]["card"]
    assert first["cardUrl"].endswith(f"/{curated[0]}/card.jpg")
    assert first["shareUrl"] == f"/s/{curated[0]}"
    record = render_service(app).records.get(curated[0])
    assert record is not None and record.media is not None
    assert (first["width"], first["height"]) == (record.media["width"], record.media["height"])
    assert first["createdAt"].endswith("+00:00")
    assert gallery["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "endCursor": gallery["edges"][-1]["cursor"],
    }


def test_schema_lists_templates(app: Flask) -> None:
    with app.test_request_context():
        result = build_schema().execute(
            "{ templates { id name posterUrl previewUrl } }", context_value=GalleryContext.current()
        )
    assert result.errors is None, result.errors
    [template] = result.data["templates"]
    assert template["id"] == "small"
    assert template["posterUrl"].endswith("/poster.jpg")
    assert template["previewUrl"].endswith("/preview.mp4")


def test_schema_refuses_a_page_over_the_limit_even_without_the_rules(app: Flask) -> None:
    with app.test_request_context():
        result = build_schema().execute(
            "{ gallery(first: 51) { edges { cursor } } }", context_value=GalleryContext.current()
        )
    assert result.data is None
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "PAGE_SIZE"}


def test_cursors_are_opaque_and_strict() -> None:
    assert decode_cursor(encode_cursor(0)) == 0
    assert decode_cursor(encode_cursor(417)) == 417
    assert "417" not in encode_cursor(417)
    bad = [
        "",
        "%%%",
        "bm90LWEtY3Vyc29y",  # "not-a-cursor"
        base64.urlsafe_b64encode(b"gallery:-1").decode(),
        base64.urlsafe_b64encode(b"gallery:\xd9\xa3").decode(),  # an Arabic-Indic digit
        base64.urlsafe_b64encode(b"gallery:" + b"9" * 80).decode(),
    ]
    for cursor in bad:
        with pytest.raises(Exception) as caught:
            decode_cursor(cursor)
        assert type(caught.value).__name__ == "BadInput", cursor


# -- over HTTP ---------------------------------------------------------------------------------


def test_pages_follow_cursors_across_the_whole_gallery(
    client: FlaskClient, curated: list[str], counted: CountingGallery
) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        response = post(client, PAGE_QUERY, {"first": 2, "after": after})
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_json()
        assert "errors" not in body, body
        connection = body["data"]["gallery"]
        seen += [edge["node"]["key"] for edge in connection["edges"]]
        pages += 1
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == curated
    assert pages == 3
    assert counted.calls == 3


def test_the_default_page_is_24_and_the_curated_order_is_kept(
    app: Flask, client: FlaskClient, curated: list[str]
) -> None:
    site_services(app).gallery.reorder(list(reversed(curated)))
    response = post(client, "{ gallery { edges { node { key } } } }")
    keys = [edge["node"]["key"] for edge in response.get_json()["data"]["gallery"]["edges"]]
    assert keys == list(reversed(curated))


def test_an_empty_gallery_is_an_empty_connection(client: FlaskClient) -> None:
    body = post(client, PAGE_QUERY).get_json()
    assert body == {
        "data": {
            "gallery": {
                "edges": [],
                "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "endCursor": None},
            }
        }
    }


def test_templates_over_http(client: FlaskClient) -> None:
    body = post(client, "{ templates { id name } }").get_json()
    assert [t["id"] for t in body["data"]["templates"]] == ["small"]


def test_an_invalid_cursor_is_a_graphql_error(
    client: FlaskClient, curated: list[str], counted: CountingGallery
) -> None:
    for cursor in ("garbage!", "bm90LWEtY3Vyc29y"):
        response = post(client, PAGE_QUERY, {"first": 2, "after": cursor})
        assert codes(response) == {"BAD_INPUT"}
        assert "cursor" in errors_of(response)[0]["message"]
    assert counted.calls == 0  # refused before the gallery was read


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ gallery(first: 51) { edges { cursor } } }", None),
        ("{ gallery(first: -1) { edges { cursor } } }", None),
        ("query($n: Int) { gallery(first: $n) { edges { cursor } } }", {"n": 51}),
        ("query($n: Int = 500) { gallery(first: $n) { edges { cursor } } }", None),
        ("query($n: Int = 500) { gallery(first: $n) { edges { cursor } } }", {"n": 51.0}),
        (
            "query($n: Int) { ...G } "
            "fragment G on Query { gallery(first: $n) { edges { cursor } } }",
            {"n": 1000},
        ),
    ],
)
def test_a_page_over_50_is_refused_before_any_resolver(
    client: FlaskClient, counted: CountingGallery, query: str, variables: dict[str, Any] | None
) -> None:
    assert codes(post(client, query, variables)) == {"PAGE_SIZE"}
    assert counted.calls == 0


def test_a_page_of_exactly_50_is_allowed(client: FlaskClient, counted: CountingGallery) -> None:
    response = post(
        client, "query($n: Int = 24) { gallery(first: $n) { edges { cursor } } }", {"n": 50}
    )
    assert response.get_json() == {"data": {"gallery": {"edges": []}}}
    assert counted.calls == 1


def nested(depth: int, leaf: str = "name") -> str:
    """``{ __schema { types { fields { type { ofType … { name } } } } } }``, ``depth`` deep."""
    fields = ["__schema", "types", "fields", "type"] + ["ofType"] * (depth - 5) + [leaf]
    assert len(fields) == depth
    query = fields[-1]
    for name in reversed(fields[:-1]):
        query = f"{name} {{ {query} }}"
    return "{ " + query + " }"


def test_depth_over_8_is_refused(debug_client: FlaskClient) -> None:
    # Introspection is allowed in debug, so the depth is all that can refuse these.
    allowed = post(debug_client, nested(MAX_DEPTH)).get_json()
    assert "errors" not in allowed, allowed
    assert allowed["data"]["__schema"]["types"]
    assert codes(post(debug_client, nested(MAX_DEPTH + 1))) == {"DEPTH_LIMIT"}


RECURSIVE = build_sdl_schema(
    "type Query { node: Node, gallery(first: Int): Node } type Node { child: Node, name: String }"
)


def depth_query(depth: int) -> str:
    query = "name"
    for _ in range(depth - 2):
        query = f"child {{ {query} }}"
    return f"{{ node {{ {query} }} }}"


def test_depth_counts_through_fragments() -> None:
    checked_document(RECURSIVE, depth_query(MAX_DEPTH))
    with pytest.raises(GraphQLValidationError) as caught:
        checked_document(RECURSIVE, depth_query(MAX_DEPTH + 1))
    assert [e.extensions for e in caught.value.errors] == [{"code": "DEPTH_LIMIT"}]
    # Five levels in the operation, four more through nested fragments: nine.
    through_fragments = """
        { node { child { child { child { child { ...A } } } } } }
        fragment A on Node { child { ...B } }
        fragment B on Node { child { ... on Node { child { name } } } }
    """
    with pytest.raises(GraphQLValidationError) as caught:
        checked_document(RECURSIVE, through_fragments)
    assert [e.extensions for e in caught.value.errors] == [{"code": "DEPTH_LIMIT"}]


def test_fragment_cycles_are_refused_without_looping() -> None:
    cycle = "{ node { ...A } } fragment A on Node { child { ...B } } fragment B on Node { ...A }"
    with pytest.raises(GraphQLValidationError) as caught:
        checked_document(RECURSIVE, cycle)
    assert any("cycle" in e.message or "itself" in e.message for e in caught.value.errors)


def test_a_fragment_bomb_is_walked_once_per_fragment() -> None:
    # Each fragment spreads the next twice: expanded, 2**40 aliases; walked, 40 fragments.
    names = [f"F{n}" for n in range(40)]
    fragments = [
        f"fragment {name} on Node {{ a: child {{ ...{nxt} }} b: child {{ ...{nxt} }} }}"
        for name, nxt in zip(names, names[1:], strict=False)
    ]
    fragments.append(f"fragment {names[-1]} on Node {{ name }}")
    query = "{ node { ..." + names[0] + " } } " + " ".join(fragments)
    with pytest.raises(GraphQLValidationError) as caught:
        checked_document(RECURSIVE, query)
    found = {(e.extensions or {}).get("code") for e in caught.value.errors}
    assert {"DEPTH_LIMIT", "ALIAS_LIMIT"} <= found


def aliased(count: int) -> str:
    fields = " ".join(f"a{n}: gallery(first: 1) {{ edges {{ cursor }} }}" for n in range(count))
    return "{ " + fields + " }"


def test_more_than_20_aliases_are_refused_before_any_resolver(
    client: FlaskClient, counted: CountingGallery
) -> None:
    assert codes(post(client, aliased(MAX_ALIASES + 1))) == {"ALIAS_LIMIT"}
    assert counted.calls == 0
    allowed = post(client, aliased(MAX_ALIASES)).get_json()
    assert "errors" not in allowed, allowed
    assert len(allowed["data"]) == MAX_ALIASES
    assert counted.calls == MAX_ALIASES


def test_aliases_are_counted_with_fragments_expanded(
    client: FlaskClient, counted: CountingGallery
) -> None:
    # Ten aliases in the text, 4 + 4 × 6 = 28 once the fragment is spread four times.
    inner = " ".join(f"e{n}: edges {{ cursor }}" for n in range(6))
    spreads = " ".join(f"g{n}: gallery {{ ...E }}" for n in range(4))
    query = f"{{ {spreads} }} fragment E on GalleryConnection {{ {inner} }}"
    assert codes(post(client, query)) == {"ALIAS_LIMIT"}
    assert counted.calls == 0


def test_more_than_100_fields_are_refused_before_validation_and_resolvers(
    client: FlaskClient, counted: CountingGallery
) -> None:
    # Repeated fields merge, so this is valid GraphQL; validating it is what costs (quadratic).
    def keys(count: int) -> str:
        return "{ gallery { edges { node { " + "key " * (count - 3) + "} } } }"

    assert codes(post(client, keys(MAX_FIELDS + 1))) == {"FIELD_LIMIT"}
    # Fragments count once per spread: 3 × 40 fields, with 41 in the text.
    spread = "{ a: gallery { ...E } b: gallery { ...E } c: gallery { ...E } }"
    fragment = "fragment E on GalleryConnection { edges { " + "cursor " * 39 + "} }"
    assert codes(post(client, f"{spread} {fragment}")) == {"FIELD_LIMIT"}
    assert counted.calls == 0
    allowed = post(client, keys(MAX_FIELDS)).get_json()
    assert allowed == {"data": {"gallery": {"edges": []}}}
    assert counted.calls == 1


INTROSPECTION = "{ __schema { queryType { name } } }"


def test_introspection_is_refused_in_production(
    client: FlaskClient, counted: CountingGallery
) -> None:
    for query in (INTROSPECTION, '{ __type(name: "GalleryEntry") { name } }'):
        errors = errors_of(post(client, query))
        assert "introspection" in errors[0]["message"].lower()
    # Typename is not introspection of the schema; it stays available.
    assert post(client, "{ __typename }").get_json() == {"data": {"__typename": "Query"}}
    assert counted.calls == 0


def test_suggestions_do_not_leak_the_schema_in_production(
    client: FlaskClient, debug_client: FlaskClient
) -> None:
    query = "{ gallery { edges { node { captio } } } }"
    [error] = errors_of(post(client, query))
    assert "caption" not in error["message"]
    [error] = errors_of(post(debug_client, query))
    assert "Did you mean 'caption'" in error["message"]


def test_introspection_is_allowed_in_debug(debug_client: FlaskClient) -> None:
    body = post(debug_client, INTROSPECTION).get_json()
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


def test_no_graphiql_and_no_get(client: FlaskClient, debug_client: FlaskClient) -> None:
    for c in (client, debug_client):
        response = c.get("/graphql?query={__typename}", headers={"Accept": "text/html"})
        assert response.status_code == 405
        allowed = {method.strip() for method in response.headers["Allow"].split(",")}
        assert allowed == {"OPTIONS", "POST"}  # Werkzeug's order follows set iteration
        assert b"<html" not in response.data.lower()


def test_a_batch_is_refused(client: FlaskClient, counted: CountingGallery) -> None:
    batch = [{"query": "{ gallery { edges { cursor } } }"}] * 2
    response = client.post("/graphql", json=batch)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "batch_refused"
    assert counted.calls == 0


def test_a_body_over_16_kb_is_refused(client: FlaskClient, counted: CountingGallery) -> None:
    padding = " " * (17 * 1024)
    query = "{ gallery { edges { cursor } } }" + padding
    assert len(json.dumps({"query": query})) > MAX_BODY_BYTES
    response = post(client, query)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "body_too_large"
    assert counted.calls == 0


def test_too_many_tokens_are_refused(client: FlaskClient, counted: CountingGallery) -> None:
    query = "{ gallery { edges { " + "cursor " * 1200 + "} } }"
    assert len(query) < MAX_BODY_BYTES
    [error] = errors_of(post(client, query))
    assert "tokens" in error["message"]
    assert counted.calls == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"{ gallery { edges { cursor } } }", "application/graphql", 415, "unsupported_media_type"),
        (
            b"query=%7B__typename%7D",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"query": "\xff"}', "application/json", 400, "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "invalid_json"),
        (b'"{ __typename }"', "application/json", 400, "bad_request"),
        (b"{}", "application/json", 400, "bad_request"),
        (b'{"query": 42}', "application/json", 400, "bad_request"),
        (b'{"query": "{ __typename }", "variables": [1]}', "application/json", 400, "bad_request"),
    ],
)
def test_malformed_bodies_get_a_json_error(
    client: FlaskClient, data: bytes, content_type: str, status: int, code: str
) -> None:
    response = client.post("/graphql", data=data, headers={"Content-Type": content_type})
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code


def test_syntax_errors_and_mutations_are_graphql_errors(client: FlaskClient) -> None:
    assert "Syntax Error" in errors_of(post(client, "{ gallery { "))[0]["message"]
    errors = errors_of(post(client, "mutation { gallery { edges { cursor } } }"))
    assert "mutation" in errors[0]["message"].lower()


def test_strict_clients_get_400_for_a_refused_document(client: FlaskClient) -> None:
    response = post(
        client, aliased(MAX_ALIASES + 1), headers={"Accept": "application/graphql-response+json"}
    )
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["extensions"]["code"] == "ALIAS_LIMIT"


class BrokenGallery:
    def page(self, offset: int, limit: int) -> tuple[tuple[GalleryEntry, ...], bool]:
        raise RuntimeError("/srv/secret/loopmark.db is corrupt")

    def close(self) -> None:
        pass


def test_an_unexpected_resolver_failure_is_masked(app: Flask, client: FlaskClient) -> None:
    services = site_services(app)
    real = services.gallery
    services.gallery = BrokenGallery()  # type: ignore[assignment]
    try:
        response = post(client, "{ gallery { edges { cursor } } }")
    finally:
        services.gallery = real
    [error] = errors_of(response)
    assert error["message"] == "Something went wrong on our side."
    assert "secret" not in response.get_data(as_text=True)


def test_execute_checked_runs_nothing_for_a_refused_document(app: Flask) -> None:
    counting = CountingGallery(site_services(app).gallery)
    with app.test_request_context():
        context = GalleryContext(gallery=counting, catalog=render_service(app).catalog)
        refused = execute_checked(build_schema().graphql_schema, aliased(21), context=context)
        allowed = execute_checked(build_schema().graphql_schema, aliased(2), context=context)
    assert refused.data is None and refused.errors
    assert allowed.errors is None and allowed.data is not None
    assert counting.calls == 2


def test_templates_are_named_in_the_requests_language(demo_client: FlaskClient) -> None:
    query = "{ templates { id name } }"
    names = {}
    for language in ("en", "de"):
        response = post(demo_client, query, headers={"Accept-Language": language})
        assert response.status_code == 200, response.get_data(as_text=True)
        names[language] = {t["id"]: t["name"] for t in response.get_json()["data"]["templates"]}
    assert names["en"]["wake-up"] == "Wake up"
    assert names["de"]["wake-up"] == "Aufwachen"
