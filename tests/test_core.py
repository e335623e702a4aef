"""The cross-cutting basics every service gets from shared/: settings, the error shape, the request middleware."""

from __future__ import annotations

import gc
from typing import ClassVar

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError

from shared.app import create_app
from shared.config import ServiceSettings, secret
from shared.errors import Conflict, ServiceUnavailable, TooManyRequests, install_error_handlers
from shared.fleet import ServiceSpec
from shared.middleware import RequestContextMiddleware


class _Settings(ServiceSettings):
    api_key: str = secret("dev-api-key")


def test_secret_is_read_from_its_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "api_key"
    path.write_text("s3cr3t-from-a-file\n")
    monkeypatch.setenv("API_KEY_FILE", str(path))
    assert _Settings().api_key == "s3cr3t-from-a-file"


def test_production_refuses_development_secrets(monkeypatch) -> None:
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://svc:Str0ng@db/svc")
    monkeypatch.setenv("RABBITMQ_URL", "amqp://svc:Str0ng@mq/")
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", "a-real-secret-value")
    with pytest.raises(ValidationError, match="API_KEY"):
        _Settings()
    monkeypatch.setenv("API_KEY", "a-real-key")
    assert _Settings().api_key == "a-real-key"


def test_production_refuses_the_default_broker_account(monkeypatch) -> None:
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://svc:Str0ng@db/svc")
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", "a-real-secret-value")
    monkeypatch.setenv("API_KEY", "a-real-key")
    with pytest.raises(ValidationError, match="RABBITMQ_URL"):
        _Settings()


class _Item(BaseModel):
    name: str = Field(max_length=10)
    count: int


def _app(max_body: int = 1000) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="probe", max_body_bytes=max_body)

    @app.post("/items")
    async def create(item: _Item) -> dict[str, str]:
        if item.name == "taken":
            raise Conflict("An item with this name exists", details={"name": item.name})
        return {"name": item.name}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM users -- must never reach a client")

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
        yield c


def _assert_error_shape(body: dict, code: str) -> dict:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "correlation_id"}
    assert body["error"]["code"] == code
    return body["error"]


async def test_invalid_input_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/items", json={"name": "x" * 11})
    assert r.status_code == 422
    error = _assert_error_shape(r.json(), "validation_error")
    assert {d["field"] for d in error["details"]} == {"name", "count"}


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/items", content=b'{"name": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    _assert_error_shape(r.json(), "invalid_json")


async def test_domain_errors_and_unknown_routes_share_the_shape(client: httpx.AsyncClient) -> None:
    r = await client.post("/items", json={"name": "taken", "count": 1})
    assert r.status_code == 409
    assert _assert_error_shape(r.json(), "conflict")["details"] == {"name": "taken"}
    r = await client.get("/nowhere")
    assert r.status_code == 404
    _assert_error_shape(r.json(), "not_found")


async def test_unexpected_errors_reveal_nothing(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert "SELECT" not in r.text and "Traceback" not in r.text
    _assert_error_shape(r.json(), "internal_error")


async def test_the_openapi_document_describes_the_error_shape_that_is_sent(client: httpx.AsyncClient) -> None:
    # found by tests/test_fuzzing.py: 422 was documented as FastAPI's {"detail": [...]}, which is never sent
    document = (await client.get("/openapi.json")).json()
    responses = document["paths"]["/items"]["post"]["responses"]
    for status in ("422", "4XX", "5XX"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert "HTTPValidationError" not in document["components"]["schemas"]
    validator = jsonschema.Draft202012Validator(document["components"]["schemas"]["ErrorResponse"])
    for sent in (
        await client.post("/items", json={}),
        await client.post("/items", json={"name": "taken", "count": 1}),
        await client.get("/nowhere"),
        await client.get("/boom"),
    ):
        assert list(validator.iter_errors(sent.json())) == [], sent.text
    assert list(validator.iter_errors({"detail": [{"loc": ["body"], "msg": "m", "type": "t"}]}))


async def test_correlation_id_is_kept_or_made_and_returned(client: httpx.AsyncClient) -> None:
    r = await client.post("/items", json={"name": "taken", "count": 1}, headers={"X-Correlation-ID": "trace-42"})
    assert r.headers["x-correlation-id"] == "trace-42"
    assert r.json()["error"]["correlation_id"] == "trace-42"
    made = (await client.get("/nowhere")).headers["x-correlation-id"]
    assert made and made != "trace-42"
    # a header that could forge log lines is replaced, not echoed
    r = await client.get("/nowhere", headers={"X-Correlation-ID": "bad id\nlevel=error"})
    assert r.headers["x-correlation-id"] != "bad id\nlevel=error"


async def test_oversized_bodies_get_413_declared_or_streamed() -> None:
    transport = httpx.ASGITransport(app=_app(max_body=100))
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
        r = await c.post("/items", content=b"x" * 101, headers={"content-type": "application/json"})
        assert r.status_code == 413
        _assert_error_shape(r.json(), "payload_too_large")

        async def chunks():
            for _ in range(5):
                yield b"y" * 50

        r = await c.post("/items", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


async def test_answers_to_retry_later_say_when_in_retry_after() -> None:
    app = _app()

    @app.get("/limited")
    async def limited() -> None:
        raise TooManyRequests("Slow down", retry_after=0, headers={"X-RateLimit-Limit": "10"})

    @app.get("/down")
    async def down() -> None:
        raise ServiceUnavailable("Try again", retry_after=30)

    @app.get("/unreachable")
    async def unreachable() -> None:
        raise ConnectionRefusedError("redis")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
        r = await c.get("/limited")
        assert (r.status_code, r.headers["retry-after"], r.headers["x-ratelimit-limit"]) == (429, "1", "10")
        _assert_error_shape(r.json(), "rate_limited")
        r = await c.get("/down")
        assert (r.status_code, r.headers["retry-after"]) == (503, "30")
        r = await c.get("/unreachable")
        assert (r.status_code, r.headers["retry-after"]) == (503, "5")
        assert (
            _assert_error_shape(r.json(), "service_unavailable")["message"] == "A dependency is unavailable, try again"
        )


def test_production_asks_a_database_only_of_a_service_that_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    class WithDatabase(ServiceSettings):
        pass

    class WithoutDatabase(ServiceSettings):
        uses_database: ClassVar[bool] = False

    strong = {"env": "production", "rabbitmq_url": "amqp://app:Strong-1@mq:5672/", "service_client_secret": "s3cret"}
    with pytest.raises(ValueError, match="DATABASE_URL"):
        WithDatabase(**strong)
    assert WithoutDatabase(**strong).database_url is None


async def test_a_started_service_has_put_its_start_up_heap_out_of_the_collectors_reach() -> None:
    """Full collections walk only what was built after start-up (shared.collector.freeze_startup_heap): the
    modules, classes and the app itself are frozen once the lifespan has started."""
    gc.unfreeze()  # as a fresh process: an app started earlier in this session froze its heap
    app = create_app(ServiceSettings(env="test", service_name="freeze-probe"), spec=_NO_DATABASE)
    built_before_start = [app]
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
        # a full collection walks generations 0-2; the frozen objects are in none of them
        assert not any(tracked is built_before_start for tracked in gc.get_objects())
        built_after_start = [app]
        assert any(tracked is built_after_start for tracked in gc.get_objects())
        app_2 = create_app(ServiceSettings(env="test", service_name="freeze-probe-2"), spec=_NO_DATABASE)
        async with app_2.router.lifespan_context(app_2):
            # once per process: a second app's start leaves what the first one's run built to the collector
            assert any(tracked is built_after_start for tracked in gc.get_objects())


_NO_DATABASE = ServiceSpec("freeze-probe", "freeze_probe", 0, has_database=False)
