"""`schema print` writes the SDL that the server serves: from `SCHEMA_DIR` alone with no database (a
frontend's CI generates its types that way), or from the database with `--database`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import PROJECT_ROOT
from server.engine.postgres import PostgresAdapter
from server.model.json_form import parse_schema_type
from server.testing import pooled_environment
from tests.live_server import server_env

NOTE = {"type": "document", "name": "note", "fields": [{"name": "text", "type": "string"}]}


def schema_print(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "schema", "print", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
    assert result.returncode == 0, result.stderr
    assert "type Note implements Document {" in result.stdout
    assert "allNotePage(where: NoteWhereInput" in result.stdout
    assert "type Post " not in result.stdout
    # No embedded PostgreSQL was started for it.
    assert not data_dir.exists()


async def test_schema_print_database_adds_types_registered_at_run_time(
    cms_database_url: str, cms_adapter: PostgresAdapter, tmp_path: Path
) -> None:
    env = server_env(tmp_path, **pooled_environment(cms_database_url))
    from_dir = tmp_path / "from-dir.graphql"
    assert schema_print(env, "-o", str(from_dir)).returncode == 0
    served = tmp_path / "served.graphql"
    first = schema_print(env, "--database", "-o", str(served))
    assert first.returncode == 0, first.stderr
    # With nothing registered at run time, both are the same schema.
    assert served.read_text() == from_dir.read_text()
    sdl = from_dir.read_text()
    assert "type Post implements Document {" in sdl
    assert "input AuthorReferenceFilter {" in sdl

    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.register_schema_type(tx, schema_type=parse_schema_type(NOTE))
    again = schema_print(env, "--database")
    assert again.returncode == 0, again.stderr
    assert "type Note implements Document {" in again.stdout
    assert "type Note " not in schema_print(env).stdout
