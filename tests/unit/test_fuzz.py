"""Bounded fuzzing (hypothesis): the recipe parser and the local Hub's request handling.

The parser must answer any input with a Recipe or a RecipeError (never another exception); the
server must answer any request with a status below 500 and never write outside its root.
Example counts are fixed so the run stays within seconds in CI.
"""

from __future__ import annotations

import string

import httpx2 as httpx  # the HTTP client under starlette's TestClient and huggingface_hub 2.x
from conftest import TOKEN, TOKENS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubtransfer.errors import RecipeError
from hubtransfer.job import load_recipe
from hubtransfer.recipe.schema import Recipe

KEYS = [
    "task",
    "model",
    "data",
    "strategy",
    "head",
    "train",
    "output_dir",
    "hub",
    "id",
    "source",
    "lr",
    "epochs",
    "early_stopping",
    "metric",
    "patience",
    "type",
    "hidden_sizes",
    "pooling",
    "eval_every",
    "precision",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
recipes = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), values, max_size=8)
BASE = {"task": "text-classification", "model": {"id": "org/m"}, "data": {"source": "packaged:rotten-tomatoes"}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes)
def test_any_mapping_gives_a_recipe_or_a_recipe_error(raw):
    try:
        assert isinstance(load_recipe(raw), Recipe)
    except RecipeError as e:
        assert e.problems and all(isinstance(p, str) and p for p in e.problems)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=string.printable + "é…", max_size=30), max_size=4))
def test_any_overrides_give_a_recipe_or_a_recipe_error(overrides):
    try:
        assert isinstance(load_recipe(BASE, overrides), Recipe)
    except RecipeError as e:
        assert e.problems


segment = st.one_of(
    st.sampled_from(
        [
            "api",
            "models",
            "datasets",
            "local-user",
            "repo",
            "resolve",
            "main",
            "tree",
            "commit",
            "preupload",
            "..",
            "%2e%2e",
            ".",
            "",
            "refs",
            "revision",
            "branch",
            "info",
            "lfs",
            "x.git",
            "README.md",
        ]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.%~é/\\", max_size=12),
)
requests = st.tuples(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"]),
    st.lists(segment, min_size=1, max_size=7),
    st.one_of(st.none(), st.binary(max_size=200), st.just(b'{"name": "../../etc", "organization": "local-user"}')),
    st.sampled_from([None, TOKEN, "hf_wrong_token_value"]),
)


def test_server_answers_any_request_without_5xx_or_escape(tmp_path):
    from starlette.testclient import TestClient

    from hubtransfer.localhub.server import create_app

    root = tmp_path / "root"
    client = TestClient(create_app(root, tokens=TOKENS), raise_server_exceptions=False)
    client.post(
        "/api/repos/create",
        json={"name": "repo", "organization": "local-user"},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    before_outside = sorted(p.name for p in tmp_path.iterdir())

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(requests)
    def probe(request):
        method, parts, body, token = request
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            response = client.request(method, "http://testserver/" + "/".join(parts), content=body, headers=headers)
        except httpx.InvalidURL:
            return  # the client library refuses to send it; nothing reaches the server

        assert response.status_code < 500, (method, parts, response.status_code, response.text[:300])

    probe()
    assert sorted(p.name for p in tmp_path.iterdir()) == before_outside  # nothing written beside the root


def test_error_headers_stay_ascii_for_non_ascii_ids(tmp_path):
    # Found by the fuzzer above: a repo id with "é" put a latin-1 byte into X-Error-Message.
    from starlette.testclient import TestClient

    from hubtransfer.localhub.server import create_app

    client = TestClient(create_app(tmp_path / "root", tokens=TOKENS), raise_server_exceptions=False)
    response = client.get("/api/models/local-user/caf\u00e9")
    assert 400 <= response.status_code < 500
    assert response.headers["x-error-message"].isascii() and "caf\\xe9" in response.headers["x-error-message"]
