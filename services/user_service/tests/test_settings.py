"""Start-up settings: production refuses missing or development secrets; the development key is made once."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.user_service.domain.keys import load_or_create_dev_key, load_signing_key
from services.user_service.settings import UserServiceSettings
from shared.testing.tokens import TokenFactory

STRONG = "a-production-secret-of-some-length"


def _production(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "env": "production",
        "database_url": f"postgresql://user_service:{STRONG}@db/repitbot_user",
        "rabbitmq_url": f"amqp://user_service:{STRONG}@rabbitmq:5672/",
        "service_client_secret": STRONG,
        "service_accounts": f"telegram-bot:{STRONG}",
    }
    values.update(overrides)
    return values


def test_production_loads_with_a_real_key(signing_key_pem: str) -> None:
    settings = UserServiceSettings(**_production(jwt_private_key=signing_key_pem))
    assert settings.service_accounts == {"telegram-bot": STRONG}


@pytest.mark.parametrize("key", [None, "dev-signing-key"])
def test_production_refuses_no_key_or_a_development_one(key: str | None) -> None:
    with pytest.raises(ValidationError, match="JWT_PRIVATE_KEY"):
        UserServiceSettings(**_production(jwt_private_key=key))


def test_production_refuses_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in _production().items():
        monkeypatch.setenv(name.upper(), str(value))
    monkeypatch.delenv("JWT_PRIVATE_KEY", raising=False)
    with pytest.raises(ValidationError, match="JWT_PRIVATE_KEY"):
        UserServiceSettings()
    key_file = tmp_path / "jwt"
    key_file.write_text("dev-generated-by-the-runner")
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(key_file))
    with pytest.raises(ValidationError, match="JWT_PRIVATE_KEY"):
        UserServiceSettings()


def test_production_refuses_development_client_secrets(signing_key_pem: str) -> None:
    with pytest.raises(ValidationError, match="telegram-bot"):
        UserServiceSettings(**_production(jwt_private_key=signing_key_pem, service_accounts="telegram-bot:dev-abc"))


def test_a_key_that_is_not_an_rsa_pem_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="JWT_PRIVATE_KEY"):
        UserServiceSettings(env="test", jwt_private_key="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")


def test_malformed_service_accounts_are_refused() -> None:
    with pytest.raises(ValidationError, match="SERVICE_ACCOUNTS"):
        UserServiceSettings(env="test", service_accounts="telegram-bot")


def test_the_development_key_is_created_once_even_by_racing_starts(tmp_path: Path) -> None:
    path = tmp_path / "var" / "dev-secrets" / "jwt_private.pem"
    with ThreadPoolExecutor(max_workers=4) as pool:
        keys = list(pool.map(lambda _: load_or_create_dev_key(path), range(4)))
    assert len(set(keys)) == 1 and path.read_bytes() == keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["jwt_private.pem"]  # no temporary files left
    assert load_signing_key(None, path).kid == load_signing_key(keys[0].decode()).kid


def test_a_key_on_one_line_of_an_env_file_is_accepted(signing_key_pem: str) -> None:
    one_line = signing_key_pem.strip().replace("\n", "\\n")
    settings = UserServiceSettings(env="test", jwt_private_key=one_line)
    assert load_signing_key(settings.jwt_private_key).kid == load_signing_key(signing_key_pem).kid


async def test_our_key_is_published_and_named_as_the_test_tokens_name_theirs() -> None:
    factory = await TokenFactory.create()
    signing_key = load_signing_key(factory.private_pem.decode())
    assert signing_key.public_jwk == factory.public_jwk and signing_key.kid == factory.kid
