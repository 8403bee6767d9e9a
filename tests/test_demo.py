"""The zero-config demo: seeded only on an empty instance in demo mode, its key reused, and never
put into a page when a database is configured."""

from __future__ import annotations

import asyncio
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.config import PROJECT_ROOT, Settings
from server.demo import DEMO_SLUG, KEY_FILE, prepare_demo
from server.engine.postgres import PostgresAdapter
from server.services import Services
from server.testing import pooled_environment
from tests.live_server import live_server, server_env

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
DEMO_URL = "http://127.0.0.1:8000"


@pytest.fixture
async def services(cms_adapter: PostgresAdapter, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(database_url=cms_adapter.database.url, data_dir=tmp_path, demo_url=DEMO_URL)
    services = Services.create(settings, cms_adapter)
    await services.start(connect=False)
    yield services
    # All of it, the outbox worker and the replica checks included: left running, they would go
    # on polling in the later tests (one event loop serves the session).
    await services.stop()


async def graphql(services: Services, key: str, query: str) -> dict[str, object]:
    app = create_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {key}"}
        )
    body: dict[str, object] = response.json()
    assert "errors" not in body, body
    return body


async def document_count(services: Services) -> int:
    async with services.adapter.system_context() as tx:
        count: int = await tx.fetchval("select count(*) from cms_documents")
    return count


async def test_an_empty_instance_gets_the_demo_and_a_dev_key(services: Services) -> None:
    demo = await prepare_demo(services, DEMO_URL)
    assert demo is not None
    key_file = services.settings.data_dir / KEY_FILE
    assert key_file.read_text().strip() == demo.key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    body = await graphql(services, demo.key, demo.query)
    data = body["data"]
    assert isinstance(data, dict)
    posts = {post["title"]: post for post in data["allPost"]}
    assert set(posts) == {
        "References, depth and cycles",
        "Row-Level Security in practice",
        "Welcome to the demo",
    }
    # Ada and Charles mentor each other; Databases sits under Engineering.
    ada = posts["Row-Level Security in practice"]["author"]
    assert (ada["name"], ada["mentor"]["name"]) == ("Ada Lovelace", "Charles Babbage")
    assert posts["Row-Level Security in practice"]["categories"][0]["parent"] == {
        "title": "Engineering"
    }
    assert {"title": "Draft: what comes next", "status": "draft"} in data["drafts"]
    assert data["siteSettings"] == {
        "siteName": "Demo site",
        "footerText": "Made with the content API.",
    }
    # An owner of `demo` and an instance admin.
    async with services.adapter.instance_transaction() as tx:
        key = await services.adapter.find_api_key_by_secret(tx, secret=demo.key)
        org = await services.adapter.find_organization_by_slug(tx, slug=DEMO_SLUG)
    assert key is not None
    assert org is not None
    assert (key.organization_id, key.role, key.instance_admin) == (org.id, "owner", True)


def readme_query() -> str:
    """The README's example query (the first operation of its first `graphql` block)."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```graphql\n", 1)[1].split("```", 1)[0]
    return block.split("\nmutation", 1)[0]


async def test_the_readme_example_query_finds_demo_posts(services: Services) -> None:
    demo = await prepare_demo(services, DEMO_URL)
    assert demo is not None
    body = await graphql(services, demo.key, readme_query())
    data = body["data"]
    assert isinstance(data, dict)
    page = data["allPostPage"]
    assert page["totalDocs"] >= 1
    post = page["docs"][0]
    assert post["author"]["name"] == "Grace Hopper"
    assert post["author"]["mentor"] == {"name": "Ada Lovelace", "_resolved": True}


async def test_a_restart_reuses_the_key_and_seeds_nothing_again(services: Services) -> None:
    first = await prepare_demo(services, DEMO_URL)
    documents = await document_count(services)
    again = await prepare_demo(services, DEMO_URL)
    assert first is not None
    assert again is not None
    assert again.key == first.key
    assert await document_count(services) == documents


async def test_workers_starting_together_seed_once(services: Services) -> None:
    demos = await asyncio.gather(*(prepare_demo(services, DEMO_URL) for _ in range(3)))
    assert len({demo.key for demo in demos if demo is not None}) == 1
    async with services.adapter.system_context() as tx:
        assert len(await services.adapter.find_all_organizations(tx)) == 1
        keys = await tx.fetchval("select count(*) from api_keys")
    assert keys == 1


async def test_a_lost_or_revoked_key_is_replaced_without_seeding_again(
    services: Services,
) -> None:
    first = await prepare_demo(services, DEMO_URL)
    assert first is not None
    documents = await document_count(services)
    key_file = services.settings.data_dir / KEY_FILE
    key_file.write_text("cms_not_a_real_key\n")
    replaced = await prepare_demo(services, DEMO_URL)
    assert replaced is not None
    assert replaced.key != first.key
    assert key_file.read_text().strip() == replaced.key
    key_file.unlink()
    assert (await prepare_demo(services, DEMO_URL)) is not None
    assert await document_count(services) == documents


async def test_an_instance_in_use_is_left_alone(services: Services) -> None:
    async with services.adapter.system_context() as tx:
        await services.adapter.create_organization(tx, name="Acme", slug="acme", created_by="test")
    assert await prepare_demo(services, DEMO_URL) is None
    async with services.adapter.system_context() as tx:
        assert await services.adapter.find_organization_by_slug(tx, slug=DEMO_SLUG) is None
    assert not (services.settings.data_dir / KEY_FILE).exists()
    assert await document_count(services) == 0


async def test_an_organization_merely_named_demo_is_not_filled(services: Services) -> None:
    async with services.adapter.system_context() as tx:
        await services.adapter.create_organization(
            tx, name="Ours", slug=DEMO_SLUG, created_by="test"
        )
    assert await prepare_demo(services, DEMO_URL) is None
    assert await document_count(services) == 0


async def test_the_page_holds_the_key_for_browsers_on_this_machine_only(
    services: Services,
) -> None:
    app = create_app(services.settings, services=services)
    async with LifespanManager(app):
        key = (services.settings.data_dir / KEY_FILE).read_text().strip()
        local = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=local, base_url="http://test") as client:
            page = (await client.get("/graphql", headers=BROWSER)).text
            assert f'"headers": {{"Authorization": "Bearer {key}"}}' in page
            assert "query Demo" in page
        remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=remote, base_url="http://test") as client:
            page = (await client.get("/graphql", headers=BROWSER)).text
            assert key not in page
            assert "Bearer" not in page


async def test_without_the_demo_flag_nothing_is_seeded(services: Services) -> None:
    settings = replace(services.settings, demo_url=None)
    app = create_app(settings, services=services)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            page = (await client.get("/graphql", headers=BROWSER)).text
    assert "Bearer" not in page
    assert not (services.settings.data_dir / KEY_FILE).exists()
    async with services.adapter.system_context() as tx:
        assert await services.adapter.find_all_organizations(tx) == []


@pytest.mark.slow
async def test_serve_with_a_database_url_seeds_nothing_and_shows_no_key(
    cms_database_url: str, tmp_path: Path
) -> None:
    # Even a DEMO_URL left in the environment is ignored once a database is configured.
    env = server_env(tmp_path, **pooled_environment(cms_database_url), DEMO_URL=DEMO_URL)
    serve = (sys.executable, "-m", "server", "serve")
    async with live_server(env, serve) as server, httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get("/graphql", headers=BROWSER)
        anonymous = await client.post("/graphql", json={"query": "{ allPost { id } }"})
    assert page.status_code == 200
    assert "Authorization" not in page.text
    assert "Bearer" not in page.text
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not (tmp_path / KEY_FILE).exists()
    assert "GraphiQL" not in server.output.text
    adapter = PostgresAdapter(cms_database_url, pool_size=1, run_migrations=False)
    await adapter.database.connect()
    try:
        async with adapter.system_context() as tx:
            assert await adapter.find_all_organizations(tx) == []
    finally:
        await adapter.disconnect()


@pytest.mark.slow
async def test_zero_config_serve_opens_graphiql_with_the_dev_key(tmp_path: Path) -> None:
    """The quick start: no database configured, so an embedded one, seeded, key filled in."""
    env = server_env(tmp_path)
    command = (sys.executable, "-m", "server", "serve")
    keys = []
    for _ in range(2):  # a restart reuses the key
        async with live_server(env, command) as server:
            async with httpx.AsyncClient(base_url=server.url) as client:
                page = (await client.get("/graphql", headers=BROWSER)).text
            key = (tmp_path / KEY_FILE).read_text().strip()
            assert f"Bearer {key}" in page
            assert f"GraphiQL: {server.url}/graphql" in server.output.text
            keys.append(key)
    assert keys[0] == keys[1]
    # The embedded server stopped with `serve`.
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


@pytest.mark.slow
async def test_serve_logs_a_line_per_request_unless_told_not_to(
    cms_database_url: str, tmp_path: Path
) -> None:
    serve = (sys.executable, "-m", "server", "serve")
    cases = (
        ({}, (), True),
        ({"ACCESS_LOG": "false"}, (), False),
        ({}, ("--no-access-log",), False),
        ({"ACCESS_LOG": "false"}, ("--no-access-log",), False),
    )
    for variables, arguments, logged in cases:
        env = server_env(tmp_path, **pooled_environment(cms_database_url), **variables)
        async with live_server(env, (*serve, *arguments)) as server:
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/healthz?probe=access-log")).status_code == 200
            await asyncio.sleep(0.3)  # the line's way through the pipe
        line = '"GET /healthz?probe=access-log HTTP/1.1" 200'
        assert (line in server.output.text) == logged, (variables, arguments)
