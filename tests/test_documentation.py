"""FINAL_MICROSERVICES_DOCUMENTATION.md keeps up with the code: every service and the bot has a section,
every route and event type is named, every alert has the runbook its annotation points to, and the README
links it. No fleet: routes are read from the routers, events from the catalogue and the sources."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from fastapi import APIRouter
from fastapi.routing import APIRoute

from shared.events.catalogue import EVENT_CATALOGUE
from shared.fleet import BOT_PACKAGE, FLEET, ServiceSpec

ROOT = Path(__file__).resolve().parents[1]
DOC_NAME = "FINAL_MICROSERVICES_DOCUMENTATION.md"
DOC = (ROOT / DOC_NAME).read_text()
RULES = ROOT / "deploy" / "prometheus" / "rules" / "repitbot.yml"
BOT_NAME = "telegram-bot"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings() -> dict[str, str]:
    return {_slug(text): text for text in re.findall(r"^#{1,6} (.+)$", DOC, flags=re.MULTILINE)}


def _section(name: str) -> str:
    """The text under ``### <name>`` up to the next heading of level 2 or 3."""
    match = re.search(rf"^### {re.escape(name)}\n(.*?)(?=^##?#? )", DOC + "\n## end", flags=re.MULTILINE | re.DOTALL)
    assert match, f"{DOC_NAME} has no '### {name}' section"
    return match.group(1)


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _routes(spec: ServiceSpec) -> list[tuple[str, str]]:
    """(method, path) of every route in the service's api/ routers (prefixes included)."""
    found = []
    for module_file in sorted((ROOT / "services" / spec.package / "api").glob("*.py")):
        module = importlib.import_module(f"{spec.module}.api.{module_file.stem}")
        for router in (value for value in vars(module).values() if isinstance(value, APIRouter)):
            for route in router.routes:
                if isinstance(route, APIRoute):
                    found += [(method, route.path) for method in route.methods if method != "HEAD"]
    return found


def _published_types(package: str) -> set[str]:
    """Event types whose payload model the package's own code constructs (outside tests and the sandbox)."""
    by_class = {model.__name__: event_type for event_type, model in EVENT_CATALOGUE.items()}
    used = set()
    for source in (ROOT / "services" / package).rglob("*.py"):
        if {"tests", "sandbox", "migrations"} & set(source.parts):
            continue
        text = source.read_text()
        used |= {event_type for name, event_type in by_class.items() if re.search(rf"\b{name}\(", text)}
    return used


def test_every_alert_has_its_runbook_heading_and_the_annotation_points_at_it() -> None:
    alerts = _alerts()
    assert alerts
    anchors = _headings()
    for rule in alerts:
        name = rule["alert"]
        assert f"\n### Runbook: {name}\n" in DOC, f"no runbook for {name}"
        anchor = rule["annotations"]["runbook"].split("#", 1)
        assert anchor[0] == DOC_NAME and anchor[1] in anchors, f"{name}'s runbook annotation {anchor} has no heading"
        assert anchors[anchor[1]] == f"Runbook: {name}"
        runbook = _section(f"Runbook: {name}")
        for part in ("**Means**", "**First checks**", "**Likely causes**", "**Fix**", "**Escalate**"):
            assert part in runbook, f"{name}'s runbook lacks {part}"


def test_no_runbook_for_an_alert_that_does_not_exist() -> None:
    names = {rule["alert"] for rule in _alerts()}
    assert set(re.findall(r"^### Runbook: (\w+)$", DOC, flags=re.MULTILINE)) == names


@pytest.mark.parametrize("name", [spec.name for spec in FLEET] + [BOT_NAME])
def test_every_service_and_the_bot_has_a_section(name: str) -> None:
    section = _section(name)
    for part in ("**Owns**", "**Endpoints**", "**Events**", "**Settings**"):
        assert part in section, f"{name}'s section lacks {part}"


@pytest.mark.parametrize("spec", FLEET, ids=lambda spec: spec.name)
def test_every_route_of_the_service_is_documented_in_its_section(spec: ServiceSpec) -> None:
    routes = _routes(spec)
    assert routes, f"no routes found for {spec.name}"
    section = _section(spec.name)
    missing = [f"{method} {path}" for method, path in routes if not _documented(section, method, path)]
    assert not missing, f"{spec.name}'s section does not list: {missing}"


def _documented(section: str, method: str, path: str) -> bool:
    # a table cell like `GET /x` or `GET`/`PUT /x`
    return f"`{method} {path}`" in section or re.search(rf"`{method}`/`\w+ {re.escape(path)}`", section) is not None


@pytest.mark.parametrize("event_type", sorted(EVENT_CATALOGUE))
def test_every_event_type_is_in_the_catalogue_table(event_type: str) -> None:
    assert re.search(rf"^\| `{re.escape(event_type)}` \|", DOC, flags=re.MULTILINE), event_type


@pytest.mark.parametrize(("name", "package"), [(spec.name, spec.package) for spec in FLEET] + [(BOT_NAME, BOT_PACKAGE)])
def test_what_a_service_publishes_is_in_its_events_line(name: str, package: str) -> None:
    events = _section(name).split("**Events**", 1)[1].split("**Settings**", 1)[0]
    missing = sorted(t for t in _published_types(package) if f"`{t}`" not in events)
    assert not missing, f"{name} publishes {missing}, not in its section's Events"


@pytest.mark.parametrize("spec", [s for s in FLEET if s.has_database], ids=lambda spec: spec.name)
def test_what_a_service_consumes_is_in_its_events_line(spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """The subscriptions its app builder hands to create_app (recorded by a stand-in)."""
    app_module = importlib.import_module(f"{spec.module}.app")
    captured: dict = {}

    def recording_create_app(settings: object, **kwargs: object) -> object:
        captured.update(kwargs)
        # a stand-in app: the real create_app would configure the process' logging
        return SimpleNamespace(state=SimpleNamespace())

    monkeypatch.setattr(app_module, "create_app", recording_create_app)
    app_module.build_app(_settings_class(spec.package)())
    consumed = set(captured.get("subscriptions") or {})
    events = _section(spec.name).split("**Events**", 1)[1].split("**Settings**", 1)[0]
    missing = sorted(t for t in consumed if f"`{t}`" not in events)
    assert not missing, f"{spec.name} consumes {missing}, not in its section's Events"


def _settings_class(package: str) -> type:
    from shared.config import ServiceSettings

    module = importlib.import_module(f"services.{package}.settings")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.__module__ == module.__name__
    ]
    assert len(classes) == 1, package
    return classes[0]


def test_every_setting_of_a_service_is_named_in_its_section() -> None:
    from shared.config import ServiceSettings

    common = set(ServiceSettings.model_fields)
    for name, package in [(spec.name, spec.package) for spec in FLEET] + [(BOT_NAME, BOT_PACKAGE)]:
        own = sorted(field.upper() for field in _settings_class(package).model_fields if field not in common)
        section = _section(name)
        missing = [field for field in own if f"`{field}`" not in section]
        assert not missing, f"{name}'s section does not name its settings {missing}"
    assert all(f"`{field.upper()}`" in DOC for field in common)


def test_internal_links_and_relative_file_links_resolve() -> None:
    anchors = _headings()
    for target in re.findall(r"\]\(([^)\s]+)\)", DOC):
        if target.startswith("#"):
            assert target[1:] in anchors, f"broken anchor {target}"
        elif not re.match(r"\w+://", target):
            assert (ROOT / target.split("#", 1)[0]).exists(), f"broken link {target}"


def test_the_readme_links_the_documentation_and_its_anchors_exist() -> None:
    links = re.findall(rf"\]\({re.escape(DOC_NAME)}(#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert links, f"README.md does not link {DOC_NAME}"
    anchors = _headings()
    assert all(anchor[1:] in anchors for anchor in links if anchor), links
