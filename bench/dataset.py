"""The benchmark's content: a deterministic blog of N posts in an organization tree.

Three organizations: a parent and its two children. The scenarios read as the first child
(`bench-a`), which holds 80% of every document type; its sibling and the parent hold 10% each, so
Row-Level Security has rows to filter out. Per organization:

- authors (N/10 in all) whose `mentor` references form self-references, 2-cycles, longer loops
  (up to 8) and a few chains that end without a mentor;
- categories (50 in all), each below a parent category except the roots;
- posts (N) with title, slug, rich-text body, integer `views` (long-tailed), float `rating`,
  `tags`, `publishedDate`, an author and 1-3 categories of their own organization.

About 80% of the posts are published (`published_data` = `draft_data`); authors and categories all
are. Ids are derived from the seed and the position, so the same (N, seed) always gives the same
documents, whatever the batch size.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# (slug, parent slug, share of each document type)
ORGANIZATIONS = (("bench", None, 1), ("bench-a", "bench", 8), ("bench-b", "bench", 1))
SCENARIO_ORG = "bench-a"
CATEGORIES = 50
PUBLISHED_SHARE = 0.8
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# Mentor groups, repeated along each organization's authors: a loop of n, or a chain ending in none.
_MENTOR_GROUPS = (
    ("loop", 1),
    ("loop", 2),
    ("loop", 3),
    ("chain", 3),
    ("loop", 2),
    ("loop", 6),
    ("loop", 1),
    ("loop", 4),
    ("loop", 8),
    ("loop", 2),
)
_ADJECTIVES = (
    "quiet", "bright", "hidden", "curious", "simple", "modern", "broken", "gentle", "rapid",
    "silent", "golden", "frozen", "wild", "tiny", "open", "honest", "lucky", "steady",
)  # fmt: skip
_NOUNS = (
    "harbor", "river", "garden", "engine", "forest", "kitchen", "window", "bridge", "mountain",
    "pixel", "compiler", "journey", "recipe", "city", "winter", "orbit", "poem", "network",
)  # fmt: skip
_TOPICS = (
    "design", "python", "travel", "food", "music", "science", "history", "sport", "books",
    "film", "code", "nature", "health", "money", "craft", "photo",
)  # fmt: skip
_SENTENCES = (
    "Nothing about this was planned, and that is exactly why it worked.",
    "We measured twice, cut once, and still had to start over on Tuesday.",
    "The first draft was too long; the second one forgot the point.",
    "Every good system starts as a small one that somebody trusted.",
    "By noon the fog had lifted and the whole valley was visible.",
    "Numbers tell you what happened, rarely why it happened.",
    "She kept the notes in a shoebox under the stairs for years.",
    "If it hurts, do it more often, until it stops hurting.",
)
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Perlman")


@dataclass(frozen=True, slots=True)
class Document:
    """One row of `cms_documents`, before it is stored."""

    id: uuid.UUID
    organization: str  # slug
    type: str
    data: dict[str, Any]
    published: bool
    created_at: datetime
    updated_at: datetime

    @property
    def references(self) -> list[uuid.UUID]:
        """The documents this one references (what `cms_document_references` indexes)."""
        found: list[uuid.UUID] = []
        for value in self.data.values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and item.get("_type") == "reference":
                    found.append(uuid.UUID(item["_ref"]))
        return list(dict.fromkeys(found))


def reference(target: uuid.UUID, key: str | None = None) -> dict[str, str]:
    ref = {"_type": "reference", "_ref": str(target)}
    if key is not None:
        ref["_key"] = key
    return ref


class Dataset:
    """The documents for `posts` posts and `seed`; iterate authors, categories, then posts."""

    def __init__(self, posts: int, seed: int = 1) -> None:
        if posts < 10:
            raise ValueError("the dataset needs at least 10 posts")
        self.posts = posts
        self.seed = seed
        self.authors = max(posts // 10, len(ORGANIZATIONS))
        weights = sum(share for _, _, share in ORGANIZATIONS)
        self._shares = {slug: share / weights for slug, _, share in ORGANIZATIONS}

    # Ids and organizations follow from the position alone.

    def document_id(self, kind: str, index: int) -> uuid.UUID:
        digest = hashlib.blake2b(f"{self.seed}:{kind}:{index}".encode(), digest_size=16).digest()
        return uuid.UUID(bytes=digest, version=4)

    def _split(self, total: int) -> dict[str, range]:
        """Consecutive index ranges per organization, in proportion to the shares."""
        ranges: dict[str, range] = {}
        start = 0
        for position, (slug, _, _) in enumerate(ORGANIZATIONS):
            last = position == len(ORGANIZATIONS) - 1
            count = total - start if last else max(1, round(total * self._shares[slug]))
            ranges[slug] = range(start, start + count)
            start += count
        return ranges

    def post_range(self, organization: str) -> range:
        return self._split(self.posts)[organization]

    def is_published(self, post_index: int) -> bool:
        return _fraction(self.seed, "published", post_index) < PUBLISHED_SHARE

    # Documents

    def author_documents(self) -> Iterator[Document]:
        rng = _rng(f"{self.seed}:authors")
        for slug, indexes in self._split(self.authors).items():
            mentors = _mentors(list(indexes))
            for index in indexes:
                data: dict[str, Any] = {
                    "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)} {index}",
                    "email": f"author{index}@example.com",
                    "bio": rng.choice(_SENTENCES),
                }
                if mentors[index] is not None:
                    data["mentor"] = reference(self.document_id("author", mentors[index]))
                yield self._document("author", index, slug, data, True, rng)

    def category_documents(self) -> Iterator[Document]:
        rng = _rng(f"{self.seed}:categories")
        for slug, indexes in self._split(CATEGORIES).items():
            roots = max(1, len(indexes) // 8)
            for position, index in enumerate(indexes):
                title = f"{_TOPICS[index % len(_TOPICS)].title()} {index}"
                data: dict[str, Any] = {"title": title, "slug": _slug(title)}
                if position >= roots:
                    parent = indexes[(position - roots) // 3]
                    data["parent"] = reference(self.document_id("category", parent))
                yield self._document("category", index, slug, data, True, rng)

    def post_documents(self, start: int = 0, stop: int | None = None) -> Iterator[Document]:
        """Posts `start` to `stop` (all by default); any slice gives the same documents."""
        authors = self._split(self.authors)
        categories = self._split(CATEGORIES)
        for slug, indexes in self._split(self.posts).items():
            first = max(start, indexes.start)
            last = min(self.posts if stop is None else stop, indexes.stop)
            for index in range(first, last):
                rng = _rng(f"{self.seed}:post:{index}")
                data = self._post_data(index, rng, authors[slug], categories[slug])
                yield self._document("post", index, slug, data, self.is_published(index), rng)

    def _post_data(
        self, index: int, rng: random.Random, authors: range, categories: range
    ) -> dict[str, Any]:
        title = (
            f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} of the "
            f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        )
        published = EPOCH - timedelta(seconds=rng.randrange(5 * 365 * 86400))
        body = [
            {
                "_type": "block",
                "_key": f"b{block}",
                "style": "normal",
                "markDefs": [],
                "children": [
                    {
                        "_type": "span",
                        "_key": "s0",
                        "marks": [],
                        "text": " ".join(rng.sample(_SENTENCES, rng.randint(1, 3))),
                    }
                ],
            }
            for block in range(rng.randint(2, 4))
        ]
        chosen = rng.sample(categories, min(len(categories), rng.randint(1, 3)))
        return {
            "title": title,
            "slug": f"{_slug(title)}-{index}",
            "body": body,
            # Long-tailed, like real page views: about 2% of the posts exceed 500.
            "views": min(int(rng.paretovariate(1.1) * 15), 2_000_000),
            "rating": round(rng.uniform(0, 5), 1),
            "tags": rng.sample(_TOPICS, rng.randint(1, 4)),
            "publishedDate": published.isoformat(timespec="seconds"),
            "author": reference(self.document_id("author", rng.choice(authors))),
            "categories": [
                reference(self.document_id("category", c), f"c{n}") for n, c in enumerate(chosen)
            ],
        }

    def _document(
        self,
        kind: str,
        index: int,
        organization: str,
        data: dict[str, Any],
        published: bool,
        rng: random.Random,
    ) -> Document:
        created = EPOCH - timedelta(seconds=rng.randrange(6 * 365 * 86400))
        updated = created + timedelta(seconds=rng.randrange(30 * 86400))
        return Document(
            id=self.document_id(kind, index),
            organization=organization,
            type=kind,
            data=data,
            published=published,
            created_at=created,
            updated_at=updated,
        )


def _rng(key: str) -> random.Random:
    return random.Random(key)  # noqa: S311 (reproducible sample data, not secrets)


def _mentors(indexes: list[int]) -> dict[int, int | None]:
    mentors: dict[int, int | None] = {}
    position = 0
    group = 0
    while position < len(indexes):
        kind, size = _MENTOR_GROUPS[group % len(_MENTOR_GROUPS)]
        members = indexes[position : position + size]
        for n, member in enumerate(members):
            if kind == "loop":
                mentors[member] = members[(n + 1) % len(members)]
            else:
                mentors[member] = members[n + 1] if n + 1 < len(members) else None
        position += size
        group += 1
    return mentors


def _fraction(seed: int, kind: str, index: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{kind}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _slug(text: str) -> str:
    return "-".join(text.lower().split())
