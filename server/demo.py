"""The zero-config demo: an organization with example content, and a dev API key for GraphiQL.

`serve` on the embedded database sets `DEMO_URL` for its workers; their lifespan calls
`prepare_demo`. No request can reach it: it runs once per process, before the first request.

On an empty instance (no organizations) it creates the organization `demo`, content for the example
model and a dev key (owner of `demo`, instance admin), whose secret is kept only in
`DATA_DIR/dev-api-key`, so later starts reuse it. An instance that holds other organizations and no
demo is left alone: no content, no key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.access.organizations import Organization
from server.db.pool import Tx
from server.engine.context import Context
from server.engine.local_api import LocalAPI

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

DEMO_SLUG = "demo"
KEY_FILE = "dev-api-key"
# Serializes the workers of one `serve --workers N`, which all start at once.
_LOCK = "select pg_advisory_xact_lock(hashtext('content-api demo seed'))"

QUERY = """\
# The demo organization's content; run it with the ▶ button (or Ctrl-Enter).
# References are followed to `depth` (default 2); beyond it, or around a
# cycle (Ada and Charles mentor each other), comes a stub: _resolved: false.
query Demo {
  allPost(sort: ["title"]) {
    title
    excerpt
    author { name mentor { name mentor { name _resolved } } }
    categories { title parent { title } }
  }
  # The draft perspective shows unpublished work too.
  drafts: allPost(perspective: "draft", sort: ["title"]) { title status }
  siteSettings { siteName footerText }
}
"""


@dataclass(frozen=True)
class Demo:
    organization_id: uuid.UUID
    key: str
    query: str = QUERY


async def prepare_demo(services: Services, url: str) -> Demo | None:
    """Seed an empty instance; return the demo's key, or None when this is not a demo instance.

    Args:
        services: the started services of this process.
        url: where the server listens, for the log line.
    """
    adapter = services.adapter
    async with adapter.system_context() as tx:
        await tx.execute(_LOCK)
        if not await adapter.find_all_organizations(tx):
            await adapter.create_organization(
                tx, name="Demo", slug=DEMO_SLUG, created_by="demo", metadata={"demo": True}
            )
            log.info("empty instance: created the demo organization %r", DEMO_SLUG)
        org = await adapter.find_organization_by_slug(tx, slug=DEMO_SLUG)
    # An organization someone else named `demo` is not ours to fill.
    if org is None or not (org.metadata or {}).get("demo"):
        return None
    key_file = services.settings.data_dir / KEY_FILE
    async with services.api.system_context(org.id) as ctx:
        await ctx.tx.execute(_LOCK)
        # Another worker may have finished while this one waited for the lock.
        key = await _saved_key(ctx.tx, services, org, key_file)
        if key is None:
            if not await ctx.tx.fetchval(
                "select exists (select 1 from cms_documents where organization_id = $1)", org.id
            ):
                await seed_content(services.api, ctx)
                log.info("seeded the demo organization with example content")
            key = await _new_key(ctx.tx, services, org, key_file)
    log.info(
        "GraphiQL: %s/graphql (the dev API key of the %r organization is filled in)", url, org.slug
    )
    return Demo(organization_id=org.id, key=key)


async def _saved_key(tx: Tx, services: Services, org: Organization, key_file: Path) -> str | None:
    secret = await asyncio.to_thread(_read, key_file)
    if not secret:
        return None
    key = await services.adapter.find_api_key_by_secret(tx, secret=secret)
    if key is None or key.organization_id != org.id:
        log.info("the saved dev API key is no longer valid; creating a new one")
        return None
    return secret


async def _new_key(tx: Tx, services: Services, org: Organization, key_file: Path) -> str:
    _, secret = await services.adapter.create_api_key(
        tx,
        organization_id=org.id,
        name="dev (demo)",
        role="owner",
        instance_admin=True,
        created_by="demo",
    )
    # Written before the transaction commits, so a worker waiting for the lock finds it.
    await asyncio.to_thread(_write, key_file, secret)
    log.info("created a dev API key for %r; its secret is in %s", org.slug, key_file)
    return secret


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _write(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Readable by the server's user only: the key is an owner and instance admin.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")


def _ref(doc: dict[str, Any], key: str | None = None) -> dict[str, str]:
    ref = {"_type": "reference", "_ref": doc["id"]}
    return {**ref, "_key": key} if key else ref


def _text(key: str, text: str) -> dict[str, Any]:
    return {
        "_type": "block",
        "_key": key,
        "style": "normal",
        "children": [{"_type": "span", "_key": f"{key}s", "text": text, "marks": []}],
        "markDefs": [],
    }


async def seed_content(api: LocalAPI, ctx: Context) -> None:
    """Example content for the example model: references with a cycle, drafts, a singleton."""
    authors, categories, posts = (
        api.collections.author,
        api.collections.category,
        api.collections.post,
    )
    ada = await authors.create(ctx, {"name": "Ada Lovelace", "bio": "Wrote the first program."})
    charles = await authors.create(
        ctx, {"name": "Charles Babbage", "mentor": _ref(ada)}, publish=True
    )
    # Ada and Charles mentor each other: a reference cycle.
    ada = await authors.update(ctx, ada["id"], {"mentor": _ref(charles)}, publish=True)
    grace = await authors.create(
        ctx,
        {"name": "Grace Hopper", "email": "grace@example.com", "mentor": _ref(ada)},
        publish=True,
    )

    engineering = await categories.create(
        ctx, {"title": "Engineering", "slug": "engineering"}, publish=True
    )
    databases = await categories.create(
        ctx,
        {"title": "Databases", "slug": "databases", "parent": _ref(engineering)},
        publish=True,
    )
    modelling = await categories.create(
        ctx,
        {
            "title": "Content modelling",
            "slug": "content-modelling",
            "parent": _ref(engineering),
        },
        publish=True,
    )

    welcome = await posts.create(
        ctx,
        {
            "title": "Welcome to the demo",
            "slug": "welcome",
            "excerpt": "What this instance holds, and how to query it.",
            "body": [_text("b1", "Every document here belongs to the demo organization.")],
            "author": _ref(grace),
            "categories": [_ref(engineering, "c1")],
            "tags": ["demo", "graphql"],
            "featured": True,
            "format": "article",
            "views": 42,
            "publishedDate": "2025-01-15T09:00:00Z",
        },
        publish=True,
    )
    await posts.create(
        ctx,
        {
            "title": "Row-Level Security in practice",
            "slug": "row-level-security",
            "excerpt": "Tenant isolation that the database enforces.",
            "author": _ref(ada),
            "categories": [_ref(databases, "c1")],
            "related": [_ref(welcome, "r1")],
            "format": "tutorial",
            "rating": 4.5,
        },
        publish=True,
    )
    await posts.create(
        ctx,
        {
            "title": "References, depth and cycles",
            "slug": "references",
            "excerpt": "Follow a reference as deep as you ask, and never in circles.",
            "author": _ref(charles),
            "categories": [_ref(modelling, "c1"), _ref(databases, "c2")],
            "format": "tutorial",
        },
        publish=True,
    )
    await posts.create(
        ctx,
        {"title": "Draft: what comes next", "slug": "next", "author": _ref(grace)},
    )

    about = await api.collections.page.create(
        ctx,
        {
            "title": "About",
            "slug": "about",
            "sections": [
                {"_type": "hero", "_key": "s1", "heading": "A demo site"},
                {"_type": "textBlock", "_key": "s2", "text": "Content served over GraphQL."},
            ],
        },
        publish=True,
    )
    await api.collections.siteSettings.create(
        ctx,
        {
            "siteName": "Demo site",
            "footerText": "Made with the content API.",
            "mainNav": [_ref(about, "n1")],
            "socialLinks": [
                {
                    "_type": "socialLink",
                    "_key": "l1",
                    "platform": "github",
                    "url": "https://github.com/",
                },
            ],
        },
        publish=True,
    )
