"""`schema print` writes the SDL that the server serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_schema_print_writes_the_sdl(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    env = {**os.environ, "DATABASE_URL": db_url}
    result = subprocess.run(
        [sys.executable, "-m", "server", "schema", "print", "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    sdl = out.read_text()
    assert "type Post implements Document {" in sdl
    assert "allPostPage(where: PostWhereInput" in sdl
    assert "input AuthorReferenceFilter {" in sdl
