"""Live schema changes: registered over GraphQL, visible to the next request and to other processes."""

from __future__ import annotations

import asyncio

import asyncpg

from server.config import Settings
from server.content.content_model import CHANNEL, ContentModel
from server.services import Services
from tests.conftest import CMS, GraphQLClient

RECIPE = {
    "type": "document",
    "name": "recipe",
    "title": "Recipe",
    "fields": [
        {"name": "title", "type": "string", "required": True},
        {"name": "minutes", "type": "number", "integer": True, "min": 1},
        {"name": "chef", "type": "reference", "to": [{"type": "author"}]},
    ],
}
REGISTER = "mutation($d: JSON!) { registerSchemaType(definition: $d) { name kind } }"


async def test_only_instance_admins_manage_schema_types(cms_api: GraphQLClient) -> None:
    denied = await cms_api(REGISTER, {"d": RECIPE})
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    deleted = await cms_api('mutation { deleteSchemaType(name: "post") { success } }')
    assert deleted["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_registered_type_is_served_by_the_next_request(cms_api: GraphQLClient) -> None:
    admin = await cms_api.key_for(cms_api.org, instance_admin=True)
    before = await cms_api("{ allRecipe { title } }")
    assert before["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    registered = await cms_api.data(REGISTER, {"d": RECIPE}, key=admin)
    assert registered["registerSchemaType"] == {"name": "recipe", "kind": "document"}

    created = await cms_api.data(
        'mutation { createRecipe(data: {title: "Soup", minutes: 20}, publish: true) { id minutes } }'
    )
    assert created["createRecipe"]["minutes"] == 20
    listed = await cms_api.data("{ allRecipe { title } }")
    assert listed["allRecipe"] == [{"title": "Soup"}]

    bad = await cms_api(
        REGISTER, {"d": {**RECIPE, "fields": [{"name": "x", "type": "nope"}]}}, key=admin
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    in_use = await cms_api('mutation { deleteSchemaType(name: "author") { success } }', key=admin)
    assert in_use["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"  # recipe.chef uses it

    await cms_api.data('mutation { deleteSchemaType(name: "recipe") { success } }', key=admin)
    gone = await cms_api("{ allRecipe { title } }")
    assert gone["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # The documents stay in the database and return with the type.
    await cms_api.data(REGISTER, {"d": RECIPE}, key=admin)
    back = await cms_api.data("{ allRecipe { title } }")
    assert back["allRecipe"] == [{"title": "Soup"}]


async def test_a_schema_change_commits_with_its_operation(cms_api: GraphQLClient) -> None:
    """A registration in an operation that fails elsewhere rolls back with it: nothing is stored,
    the live registry keeps what it had, and no other process is told of a change."""
    admin = await cms_api.key_for(cms_api.org, instance_admin=True)
    failed = await cms_api(
        "mutation($d: JSON!) { registerSchemaType(definition: $d) { name }"
        ' deleteSchemaType(name: "no-such-type") { success } }',
        {"d": RECIPE},
        key=admin,
    )
    assert failed["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "recipe" not in cms_api.services.model.registry
    async with cms_api.services.adapter.instance_transaction() as tx:
        stored = await tx.fetchval("SELECT count(*) FROM cms_schema_types WHERE name = 'recipe'")
    assert stored == 0
    after = await cms_api("{ allRecipe { title } }")
    assert after["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    # The same registration on its own commits, and the next request is served the new type.
    await cms_api.data(REGISTER, {"d": RECIPE}, key=admin)
    assert "recipe" in cms_api.services.model.registry
    assert (await cms_api.data("{ allRecipe { title } }")) == {"allRecipe": []}


async def test_other_processes_pick_the_change_up_within_a_second(cms_api: GraphQLClient) -> None:
    database = cms_api.services.adapter.database
    settings = Settings(
        database_url=database.url,
        database_pool_mode=database.pool_mode,
        database_direct_url=database.direct_url,
    )
    other = Services.create(settings)
    other.adapter.run_migrations = False
    await other.start()
    try:
        assert "recipe" not in other.model.registry
        admin = await cms_api.key_for(cms_api.org, instance_admin=True)
        await cms_api.data(REGISTER, {"d": RECIPE}, key=admin)
        for _ in range(20):
            if "recipe" in other.model.registry:
                break
            await asyncio.sleep(0.05)
        assert "recipe" in other.model.registry
    finally:
        await other.stop()


async def test_a_reload_never_overwrites_a_newer_change_of_this_process(cms: CMS) -> None:
    """The listener's reload and this process's own registration, at the same moment: the
    registry ends with what was registered last, never with what a reload read before it."""
    for n in range(20):
        maximum = 100 + n
        definition = {
            "type": "document",
            "name": "note",
            "fields": [{"name": "text", "type": "string", "max": maximum}],
        }
        reload = asyncio.create_task(cms.model._reload_if_changed())
        await asyncio.sleep(0)  # the reload starts first and reads what is stored now
        async with cms.adapter.instance_transaction() as tx:
            await cms.model.register(tx, definition)
        await reload
        [field] = cms.model.registry["note"].fields
        assert field.max == maximum, n


async def test_the_listener_closes_while_notifications_come_in(cms: CMS) -> None:
    """`close()` ends the listener however its notifications fall: each one sets the event its
    loop waits on, and one that comes as the loop is cancelled must not keep it going."""
    direct = cms.adapter.database.direct_url
    notifier = await asyncpg.connect(direct)
    notifying = True

    async def notify() -> None:
        while notifying:
            await notifier.execute(f"NOTIFY {CHANNEL}")

    task = asyncio.create_task(notify())
    try:
        for n in range(20):
            model = ContentModel(cms.adapter, cms.adapter.instance_transaction)
            await model.listen(direct)
            await asyncio.sleep(0.002 * (n % 5))
            closing = asyncio.ensure_future(model.close())
            done, _ = await asyncio.wait({closing}, timeout=5)
            assert done, f"close() did not end the listener ({n})"
    finally:
        notifying = False
        await task
        await notifier.close()
