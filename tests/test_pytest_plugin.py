"""The pytest plugin gives a downstream project a running API, a key and a client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOWNSTREAM_TEST = """
pytest_plugins = ["server.pytest_plugin"]


async def test_a_downstream_project_can_query(cms_api):
    created = await cms_api.data(
        'mutation { createPost(data: {title: "Hi", slug: "hi"}, publish: true) { id } }'
    )
    listed = await cms_api.data("{ allPost { id title } }")
    assert listed["allPost"] == [{"id": created["createPost"]["id"], "title": "Hi"}]
    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    denied = await cms_api('mutation { deletePost(id: "%s") { success } }'
                           % created["createPost"]["id"], key=viewer)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
"""


@pytest.mark.slow
def test_the_plugin_works_in_another_project(tmp_path: Path) -> None:
    (tmp_path / "test_downstream.py").write_text(DOWNSTREAM_TEST)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n"
        "asyncio_default_test_loop_scope = session\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
