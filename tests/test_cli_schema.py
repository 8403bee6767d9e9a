"""`schema print` writes the SDL that the server serves: from `SCHEMA_DIR` alone with no database (a
frontend's CI generates its types that way), or from the database with `--database`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.engine.postgres import PostgresAdapter
from server.model.json_form import parse_schema_type
from server.testing import pooled_environment
from tests.command_line import Result, run_main, run_main_async
from tests.live_server import server_env

NOTE = {"type": "document", "name": "note", "fields": [{"name": "text", "type": "string"}]}


def schema_print(env: dict[str, str], *args: str) -> Result:
    """`schema print ARGS`, in this process (tests/command_line.py)."""
    return run_main(env, "schema", "print", *args)


async def schema_print_async(env: dict[str, str], *args: str) -> Result:
    return await run_main_async(env, "schema", "print", *args)


@pytest.mark.parametrize(
    "database",
    [
        pytest.param({}, id="none configured"),
        pytest.param({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, id="unreachable"),
    ],
)
def test_schema_print_reads_the_schema_dir_without_a_database(
    tmp_path: Path, database: dict[str, str]
) -> None:
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    (schema_dir / "note.json").write_text(json.dumps(NOTE))
    data_dir = tmp_path / "data"
    env = server_env(data_dir, SCHEMA_DIR=str(schema_dir), **database)
    result = schema_print(env)
    assert result.code == 0, result.stderr
    assert "type Note implements Document {" in result.text
    assert "allNotePage(where: NoteWhereInput" in result.text
    assert "type Post " not in result.text
    # No embedded PostgreSQL was started for it.
    assert not data_dir.exists()


async def test_schema_print_database_adds_types_registered_at_run_time(
    cms_database_url: str, cms_adapter: PostgresAdapter, tmp_path: Path
) -> None:
    env = server_env(tmp_path, **pooled_environment(cms_database_url))
    from_dir = tmp_path / "from-dir.graphql"
    assert (await schema_print_async(env, "-o", str(from_dir))).code == 0
    served = tmp_path / "served.graphql"
    first = await schema_print_async(env, "--database", "-o", str(served))
    assert first.code == 0, first.stderr
    # With nothing registered at run time, both are the same schema.
    assert served.read_text() == from_dir.read_text()
    sdl = from_dir.read_text()
    assert "type Post implements Document {" in sdl
    assert "input AuthorReferenceFilter {" in sdl

    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.register_schema_type(tx, schema_type=parse_schema_type(NOTE))
    again = await schema_print_async(env, "--database")
    assert again.code == 0, again.stderr
    assert "type Note implements Document {" in again.text
    assert "type Note " not in (await schema_print_async(env)).text
