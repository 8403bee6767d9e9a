"""A pyinstrument session of the server under load, summarised: where the event loop's time went.

Every sampled moment is attributed to the innermost frame that belongs to a known area (the server's
modules, GraphQL execution, the driver, the HTTP stack, the event loop), so the areas add up to the
whole profile. Time the event loop spends waiting (for PostgreSQL, for the network) is its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pyinstrument.frame import Frame
from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
from pyinstrument.session import Session

# (label, fragments of the file path); the first match wins, so specific entries come first.
# Reads are compiled to one statement (server/query/); mutations still go through the resolvers,
# reference resolution and typegen.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("server: reference resolution (references.py)", ("/server/content/references.py",)),
    ("server: GraphQL instances from JSON (typegen.py)", ("/server/graphql/typegen.py",)),
    (
        "server: where/sort compiler, queries",
        ("/server/content/filters.py", "/server/content/queries.py"),
    ),
    ("server: local API rendering (local_api.py)", ("/server/engine/local_api.py",)),
    (
        "server: request context, auth, tenancy",
        ("/server/graphql/context.py", "/server/access/auth.py"),
    ),
    ("server: compiled reads (server/query/)", ("/server/query/",)),
    ("server: other", ("/server/",)),
    ("GraphQL execution (strawberry, graphql-core)", ("/strawberry/", "/graphql/")),
    ("asyncpg (driver, codecs)", ("/asyncpg/",)),
    ("HTTP (uvicorn, httptools, starlette)", ("/uvicorn/", "/httptools/", "/starlette/")),
    (
        "event loop: idle (waiting for PostgreSQL or clients) and scheduling",
        ("/asyncio/", "/uvloop/", "/selectors.py"),
    ),
)
OTHER = "other (stdlib, dataclasses, json, ...)"


@dataclass(frozen=True)
class Summary:
    seconds: float
    areas: list[tuple[str, float]]  # (label, share of the total)
    top_self: list[tuple[str, float]]  # ("function (file:line)", share)
    top_server: list[tuple[str, float]]  # server functions, inclusive

    def to_json(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 2),
            "areas": self.areas,
            "top_self": self.top_self,
            "top_server": self.top_server,
        }


def _area(path: str | None) -> str | None:
    if not path:
        return None
    for label, fragments in AREAS:
        if any(fragment in path for fragment in fragments):
            return label
    return None


def _name(frame: Frame) -> str:
    if frame.file_path == "<string>":
        return f"{frame.function} (generated code, e.g. a dataclass __init__)"
    return f"{frame.function} ({frame.file_path_short}:{frame.line_no})"


# The request's entry points wrap everything; their inclusive time says nothing.
_ENTRY_POINTS = ("/server/http/endpoint.py", "/server/app.py")


def _is_server(path: str | None) -> bool:
    return path is not None and "/server/" in path and not path.endswith(_ENTRY_POINTS)


def summarise(session: Session, *, top: int = 12) -> Summary:
    root = session.root_frame(trim_stem=False)
    if root is None or root.time <= 0:
        return Summary(seconds=0.0, areas=[], top_self=[], top_server=[])
    total = root.time
    by_area: dict[str, float] = defaultdict(float)
    by_function: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)

    def walk(frame: Frame, inherited: str, parent: str, open_functions: frozenset[str]) -> None:
        # "[self]" and "[await]" leaves carry their parent's own time.
        synthetic = frame.is_synthetic
        area = inherited if synthetic else (_area(frame.file_path) or inherited)
        name = parent if synthetic else _name(frame)
        own = frame.time - sum(child.time for child in frame.children)
        by_area[area] += own
        by_function[name] += own
        server_code = not synthetic and _is_server(frame.file_path)
        if server_code and name not in open_functions:
            inclusive[name] += frame.time  # counted once per stack, however deep it recurses
        below = open_functions | {name} if server_code else open_functions
        for child in frame.children:
            walk(child, area, name, below)

    walk(root, OTHER, _name(root), frozenset())

    def share(items: dict[str, float]) -> list[tuple[str, float]]:
        ranked = sorted(items.items(), key=lambda item: -item[1])
        return [(name, round(seconds / total, 4)) for name, seconds in ranked]

    return Summary(
        seconds=total,
        areas=share(by_area),
        top_self=share(by_function)[:top],
        top_server=share(inclusive)[:top],
    )


def save_renderings(session: Session, folder: Path, stem: str) -> None:
    """The full profile as text and as pyinstrument's HTML page, next to the results."""
    text = ConsoleRenderer(unicode=True, color=False, show_all=False, short_mode=False)
    (folder / f"{stem}.txt").write_text(text.render(session))
    (folder / f"{stem}.html").write_text(HTMLRenderer().render(session))
