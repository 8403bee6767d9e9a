"""Assets through the local API: uploads checked and stored, reference counting through real
documents, deletes and their files, and tenant isolation."""

from __future__ import annotations

import dataclasses
import io
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from server.assets.cleanup import remove_asset_values
from server.assets.storage import LocalStorage, is_storage_name
from server.assets.store import PayloadTooLargeError
from server.config import ConfigError, Settings
from server.engine.assets import AssetsAPI
from server.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from server.model.types import Registry
from tests.conftest import CMS, until_a_lock_wait

LIMIT = 256 * 1024
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png(width: int = 4, height: int = 3, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "red").save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int = 8, height: int = 6) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(out, format="JPEG")
    return out.getvalue()


def image(asset_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {"_type": "image", "asset": {"_type": "reference", "_ref": str(asset_id)}, **extra}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "assets"


@pytest.fixture
def assets(cms: CMS, folder: Path) -> AssetsAPI:
    return AssetsAPI(cms.api, LocalStorage(folder, "/assets"), max_upload_bytes=LIMIT)


@pytest.fixture
async def org(cms: CMS) -> uuid.UUID:
    return await cms.org("acme")


async def upload(cms: CMS, assets: AssetsAPI, org: uuid.UUID, data: bytes, **options: Any) -> Any:
    options.setdefault("filename", "upload.bin")
    async with cms.api.context(org, user_id="u1", capabilities=None) as ctx:
        return await assets.upload(ctx, data, **options)


async def asset_row(cms: CMS, asset_id: uuid.UUID) -> dict[str, Any] | None:
    async with cms.adapter.system_context() as tx:
        row = await tx.fetchrow("select * from cms_assets where id = $1", asset_id)
    return dict(row) if row is not None else None


def stored(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# Uploads


async def test_png_is_detected_and_stored(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID, folder: Path
) -> None:
    data = png(4, 3)
    asset = await upload(
        cms, assets, org, data, filename="Cat photo.png", content_type="image/png", title="Cat"
    )
    assert (asset.asset_type, asset.mime_type, asset.width, asset.height) == (
        "image",
        "image/png",
        4,
        3,
    )
    assert asset.metadata["format"] == "PNG"
    assert asset.metadata["hasAlpha"] is True
    assert len(asset.metadata["sha256"]) == 64
    assert asset.size == len(data)
    assert asset.original_filename == "Cat photo.png"
    assert asset.filename == f"{asset.id.hex}.png"
    assert asset.url == f"/assets/{asset.filename}"
    assert asset.reference_count == 0
    assert stored(folder) == [asset.filename]
    assert (folder / asset.filename).read_bytes() == data
    row = await asset_row(cms, asset.id)
    assert row is not None
    assert (row["organization_id"], row["storage_adapter"], row["created_by"]) == (
        org,
        "local",
        "u1",
    )
    assert (row["path"], row["title"]) == (asset.filename, "Cat")


async def test_jpeg_without_a_declared_type(cms: CMS, assets: AssetsAPI, org: uuid.UUID) -> None:
    asset = await upload(cms, assets, org, jpeg(8, 6), filename="x", content_type=None)
    assert (asset.mime_type, asset.width, asset.height, asset.metadata["format"]) == (
        "image/jpeg",
        8,
        6,
        "JPEG",
    )
    assert asset.filename.endswith(".jpg")
    # A common alias of the declared type is fine.
    alias = await upload(cms, assets, org, jpeg(), content_type="image/jpg")
    assert alias.mime_type == "image/jpeg"


async def test_pdf_like_file(cms: CMS, assets: AssetsAPI, org: uuid.UUID, folder: Path) -> None:
    asset = await upload(
        cms, assets, org, PDF, filename="report.pdf", content_type="application/pdf"
    )
    assert (asset.asset_type, asset.mime_type, asset.width, asset.height) == (
        "file",
        "application/pdf",
        None,
        None,
    )
    assert asset.filename.endswith(".pdf")
    assert (folder / asset.filename).read_bytes() == PDF


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (b"a,b\n1,2\n", "text/csv", ("text/csv", "csv")),
        (b"just words", "text/plain", ("text/plain", "txt")),
        (b'{"a": 1}', "application/json", ("application/json", "json")),
        (b"\x00\x01\x02binary", None, ("application/octet-stream", "bin")),
        (b"PK\x03\x04" + b"\x00" * 40, "application/zip", ("application/zip", "zip")),
        (
            b"PK\x03\x04" + b"\x00" * 40,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
        ),
    ],
)
async def test_other_files(
    cms: CMS,
    assets: AssetsAPI,
    org: uuid.UUID,
    data: bytes,
    declared: str | None,
    expected: tuple[str, str],
) -> None:
    asset = await upload(cms, assets, org, data, content_type=declared)
    assert asset.asset_type == "file"
    assert (asset.mime_type, asset.filename.rsplit(".", 1)[1]) == expected


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (png(), "application/pdf"),
        (png(), "image/jpeg"),
        (PDF, "image/png"),
        (b"hello", "image/png"),
        (b"hello", "application/pdf"),
        (b"\x00\x01binary", "application/pdf"),
        (b"\x00\x01binary", "image/gif"),
    ],
)
async def test_declared_type_must_match(
    cms: CMS,
    assets: AssetsAPI,
    org: uuid.UUID,
    folder: Path,
    data: bytes,
    declared: str,
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await upload(cms, assets, org, data, content_type=declared)
    assert caught.value.code == "BAD_USER_INPUT"
    assert caught.value.path == "file"
    assert declared in caught.value.message
    await assets.settle()
    assert stored(folder) == []


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.mark.parametrize(
    ("data", "declared", "neutralised"),
    [
        (SVG, "image/svg+xml", "image/svg+xml"),
        (SVG, None, "image/svg+xml"),
        (HTML, "text/html", "text/html"),
        (HTML, "text/plain", "text/html"),
        (b"  \n<div onclick=alert(1)>x</div>", None, "text/html"),
        (b"plain but declared as html", "text/html; charset=utf-8", "text/html"),
    ],
)
async def test_markup_is_neutralised(
    cms: CMS,
    assets: AssetsAPI,
    org: uuid.UUID,
    data: bytes,
    declared: str | None,
    neutralised: str,
) -> None:
    asset = await upload(cms, assets, org, data, filename="evil.svg", content_type=declared)
    assert (asset.asset_type, asset.mime_type) == ("file", "application/octet-stream")
    assert asset.filename.endswith(".bin")
    assert asset.metadata["neutralised"] == neutralised
    assert asset.original_filename == "evil.svg"


async def test_oversize_is_refused(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID, folder: Path
) -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        await upload(cms, assets, org, b"x" * (LIMIT + 1), content_type="text/plain")
    assert caught.value.code == "PAYLOAD_TOO_LARGE"
    assert isinstance(caught.value, InvalidInputError)
    # Exactly at the limit is fine.
    asset = await upload(cms, assets, org, b"x" * LIMIT, content_type="text/plain")
    assert asset.size == LIMIT
    await assets.settle()
    assert stored(folder) == [asset.filename]


async def test_an_endless_upload_stops_at_the_limit(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID
) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 4096
            yield b"y" * 4096

    async with cms.api.context(org, capabilities=None) as ctx:
        with pytest.raises(PayloadTooLargeError):
            await assets.upload(ctx, endless())
    assert sent <= LIMIT + 4096


async def test_empty_and_damaged_files_are_refused(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID
) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        await upload(cms, assets, org, b"")
    with pytest.raises(InvalidInputError, match="damaged"):
        await upload(cms, assets, org, png(50, 50)[:60], content_type="image/png")


def _png_claiming(width: int, height: int) -> bytes:
    data = bytearray(png(1, 1, "L"))
    # IHDR follows the 8-byte signature and its own length and tag; patch the size, then its CRC.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


async def test_decompression_bombs_are_refused(cms: CMS, assets: AssetsAPI, org: uuid.UUID) -> None:
    with pytest.raises(InvalidInputError, match="too many pixels"):
        await upload(cms, assets, org, _png_claiming(60_000, 60_000), content_type="image/png")


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/x.png", "x.png"),
        ("..", "upload"),
        ("a\x00b\nc.txt", "abc.txt"),
        (None, "upload"),
    ],
)
async def test_client_file_names_cannot_escape(
    cms: CMS,
    assets: AssetsAPI,
    org: uuid.UUID,
    folder: Path,
    tmp_path: Path,
    name: str | None,
    kept: str,
) -> None:
    asset = await upload(cms, assets, org, b"hello", filename=name, content_type="text/plain")
    assert asset.original_filename == kept
    assert is_storage_name(asset.filename)
    assert stored(folder) == [asset.filename]
    assert stored(tmp_path) == ["assets"]


async def test_local_storage_refuses_names_it_did_not_make(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files", "/files")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    for name in ("../secret.txt", "..", "a/b.txt", "secret.txt", f"{uuid.uuid4().hex}.TXT"):
        with pytest.raises(ValueError, match="not a stored file name"):
            await storage.save(b"x", filename=name)
        assert await storage.open(name) is None
        assert await storage.read(name) is None
        assert await storage.delete(name) is False
    assert secret.read_text() == "secret"
    name = f"{uuid.uuid4().hex}.txt"
    assert await storage.save(io.BytesIO(b"hello"), filename=name) == name
    assert await storage.read(name) == b"hello"
    assert storage.url_for(name) == f"/files/{name}"
    # Atomic writes leave no temporary file behind.
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == [name]


async def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("disk on fire")

    storage = LocalStorage(tmp_path / "files")
    with pytest.raises(OSError, match="disk on fire"):
        await storage.save(Broken(), filename=f"{uuid.uuid4().hex}.bin")
    assert list((tmp_path / "files").iterdir()) == []


# Describing


async def test_update_leaves_unset_fields_and_clears_nulls(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID
) -> None:
    asset = await upload(cms, assets, org, png(), title="T", alt="A", credit_line="C")
    async with cms.api.context(org, user_id="u2", capabilities=None) as ctx:
        changed = await assets.update(ctx, asset.id, alt=None, description="D")
    assert (changed.title, changed.alt, changed.description, changed.credit_line) == (
        "T",
        None,
        "D",
        "C",
    )
    assert changed.updated_by == "u2"
    async with cms.api.context(org, capabilities=None) as ctx:
        with pytest.raises(InvalidInputError) as caught:
            await assets.update(ctx, asset.id, title="x" * 256)
    assert caught.value.path == "title"
    async with cms.api.context(org, capabilities=None) as ctx:
        with pytest.raises(NotFoundError):
            await assets.update(ctx, uuid.uuid4(), title="x")


# Reference counting


async def post(cms: CMS, org: uuid.UUID, data: dict[str, Any], *, publish: bool = False) -> str:
    async with cms.api.context(org, user_id="u1", capabilities=None) as ctx:
        doc = await cms.api.collections.post.create(ctx, data, publish=publish)
    return str(doc["id"])


async def usage(cms: CMS, assets: AssetsAPI, org: uuid.UUID, asset_id: uuid.UUID) -> Any:
    async with cms.api.context(org, capabilities=None) as ctx:
        found = await assets.find_by_id(ctx, asset_id)
        using = await assets.documents_using(ctx, asset_id)
    assert found is not None
    return found.reference_count, {(str(u.document_id), u.plane, u.field_path) for u in using}


async def test_reference_counts_follow_the_documents(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID
) -> None:
    cover = (await upload(cms, assets, org, png())).id
    other = (await upload(cms, assets, org, jpeg())).id
    body = [
        {"_type": "block", "_key": "b1", "children": [{"_type": "span", "text": "Hi"}]},
        image(cover, _key="i1"),
        image(other, _key="i2"),
    ]
    first = await post(cms, org, {"title": "One", "coverImage": image(cover), "body": body})
    # One document using the asset twice counts once.
    assert await usage(cms, assets, org, cover) == (
        1,
        {(first, "draft", "coverImage"), (first, "draft", "body[1]")},
    )
    second = await post(
        cms, org, {"title": "Two", "slug": "two", "coverImage": image(cover)}, publish=True
    )
    count, places = await usage(cms, assets, org, cover)
    assert count == 2
    assert (second, "draft", "coverImage") in places
    assert (second, "published", "coverImage") in places

    async with cms.api.context(org, capabilities=None) as ctx:
        await cms.api.collections.post.unpublish(ctx, second)
    count, places = await usage(cms, assets, org, cover)
    assert (count, (second, "published", "coverImage") in places) == (2, False)

    async with cms.api.context(org, capabilities=None) as ctx:
        await cms.api.collections.post.update(ctx, second, {"coverImage": None})
        await cms.api.collections.post.update(ctx, first, {"coverImage": image(other)})
    assert await usage(cms, assets, org, cover) == (1, {(first, "draft", "body[1]")})
    assert (await usage(cms, assets, org, other))[0] == 1


async def test_find_filters_sorts_and_pages(cms: CMS, assets: AssetsAPI, org: uuid.UUID) -> None:
    used = await upload(cms, assets, org, png(), filename="zebra.png", title="Banner")
    unused = await upload(cms, assets, org, PDF, filename="annual_report.pdf")
    text = await upload(cms, assets, org, b"a,b", filename="100%.csv", content_type="text/csv")
    await post(cms, org, {"title": "P", "coverImage": image(used.id)})

    async def ids(**filters: Any) -> list[uuid.UUID]:
        async with cms.api.context(org, capabilities=None) as ctx:
            page = await assets.find(ctx, **filters)
        return [row.id for row in page.items]

    assert await ids() == [text.id, unused.id, used.id]
    assert await ids(sort="oldest") == [used.id, unused.id, text.id]
    assert await ids(sort="name-asc") == [text.id, unused.id, used.id]  # 100%, annual, Banner
    assert await ids(sort="name-desc") == [used.id, unused.id, text.id]
    assert await ids(usage="in-use") == [used.id]
    assert await ids(usage="unused") == [text.id, unused.id]
    assert await ids(asset_type="image") == [used.id]
    assert await ids(mime_type="application/pdf") == [unused.id]
    assert await ids(mime_type="text/*") == [text.id]
    assert await ids(search="BANN") == [used.id]
    assert await ids(search="report") == [unused.id]
    assert await ids(search="%") == [text.id]  # a literal percent sign, not a wildcard
    assert await ids(search="_") == [unused.id]

    async with cms.api.context(org, capabilities=None) as ctx:
        page = await assets.find(ctx, limit=2, offset=1)
        beyond = await assets.find(ctx, limit=2, offset=10)
    assert ([row.id for row in page.items], page.total) == ([unused.id, used.id], 3)
    assert [row.reference_count for row in page.items] == [0, 1]
    assert (beyond.items, beyond.total) == ([], 3)

    for bad in ({"usage": "sometimes"}, {"sort": "size"}, {"asset_type": "video"}, {"limit": 0}):
        async with cms.api.context(org, capabilities=None) as ctx:
            with pytest.raises(InvalidInputError):
                await assets.find(ctx, **bad)


# Deleting


async def test_delete_is_refused_while_in_use(cms: CMS, assets: AssetsAPI, org: uuid.UUID) -> None:
    asset = await upload(cms, assets, org, png())
    doc = await post(
        cms, org, {"title": "P", "slug": "p", "coverImage": image(asset.id)}, publish=True
    )
    async with cms.api.context(org, capabilities=None) as ctx:
        await cms.api.collections.post.update(ctx, doc, {"coverImage": None})
    # The published plane alone still uses it.
    async with cms.api.context(org, capabilities=None) as ctx:
        with pytest.raises(ConflictError, match="used by 1 document"):
            await assets.delete(ctx, asset.id)
    assert await asset_row(cms, asset.id) is not None


async def test_delete_removes_the_file_after_commit(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID, folder: Path
) -> None:
    asset = await upload(cms, assets, org, png())
    async with cms.api.context(org, capabilities=None) as ctx:
        deleted = await assets.delete(ctx, asset.id)
        assert deleted.id == asset.id
        # The clean-up has started and waits for this transaction's lock on the asset.
        await until_a_lock_wait(cms.adapter)
        assert stored(folder) == [asset.filename]  # not before the commit
    await assets.settle()
    assert stored(folder) == []
    assert await asset_row(cms, asset.id) is None


async def test_rolled_back_changes_keep_the_files_consistent(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID, folder: Path
) -> None:
    kept = await upload(cms, assets, org, png())

    async def abort() -> None:
        async with cms.api.context(org, capabilities=None) as ctx:
            await assets.delete(ctx, kept.id)
            await assets.upload(ctx, jpeg())
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await abort()
    await assets.settle()
    # The delete rolled back: the file stays. The upload rolled back: its file is gone.
    assert stored(folder) == [kept.filename]
    assert await asset_row(cms, kept.id) is not None


async def test_forced_delete_removes_the_references(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID, folder: Path
) -> None:
    gone = (await upload(cms, assets, org, png())).id
    stays = (await upload(cms, assets, org, jpeg())).id
    body = [
        image(gone, _key="a"),
        {"_type": "block", "_key": "b", "children": []},
        image(stays, _key="c"),
        image(gone, _key="d"),
    ]
    doc = await post(
        cms, org, {"title": "P", "slug": "p", "coverImage": image(gone), "body": body}, publish=True
    )
    async with cms.api.context(org, user_id="u9", capabilities=None) as ctx:
        await assets.delete(ctx, gone, force=True)
    await assets.settle()

    async with cms.adapter.system_context() as tx:
        row = await tx.fetchrow(
            "select draft_data, published_data, revision, updated_by from cms_documents"
            " where id = $1",
            uuid.UUID(doc),
        )
        refs = await tx.fetch(
            "select asset_id, plane, field_path from cms_asset_references where document_id = $1",
            uuid.UUID(doc),
        )
    assert row is not None
    draft = row["draft_data"]
    assert "coverImage" not in draft
    assert [item["_key"] for item in draft["body"]] == ["b", "c"]
    assert (row["revision"], row["updated_by"]) == (2, "u9")
    # Published content changes only by publishing: it keeps the (now dangling) reference.
    assert row["published_data"]["coverImage"] == image(gone)
    # The index follows the cleaned draft; the shifted array item has its new path.
    assert {(r["asset_id"], r["plane"], r["field_path"]) for r in refs} == {
        (stays, "draft", "body[1]"),
        (stays, "published", "body[2]"),
    }
    assert await asset_row(cms, gone) is None
    assert len(stored(folder)) == 1

    async with cms.api.context(org, capabilities=None) as ctx:
        doc_now = await cms.api.collections.post.find_by_id(ctx, doc, perspective="draft")
        await cms.api.collections.post.publish(ctx, doc)
    assert doc_now is not None
    assert doc_now["_meta"]["hasUnpublishedChanges"] is True


async def test_forced_delete_on_a_type_no_longer_registered(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID
) -> None:
    gone = (await upload(cms, assets, org, png())).id
    stays = (await upload(cms, assets, org, jpeg())).id
    related = await post(cms, org, {"title": "A"})
    body = [image(gone, _key="a"), image(stays, _key="b")]
    doc = await post(
        cms,
        org,
        {
            "title": "P",
            "coverImage": image(gone),
            "body": body,
            "related": [{"_type": "reference", "_ref": related, "_key": "r"}],
        },
    )
    async with cms.api.context(org, capabilities=None) as ctx:
        # As if the post type had been removed from the content model since.
        await assets.delete(dataclasses.replace(ctx, registry=Registry()), gone, force=True)
    async with cms.adapter.system_context() as tx:
        assets_used = await tx.fetch(
            "select asset_id, field_path from cms_asset_references where document_id = $1",
            uuid.UUID(doc),
        )
        documents_used = await tx.fetch(
            "select ref_id from cms_document_references where referencer_id = $1",
            uuid.UUID(doc),
        )
    assert [(r["asset_id"], r["field_path"]) for r in assets_used] == [(stays, "body[0]")]
    assert [r["ref_id"] for r in documents_used] == [uuid.UUID(related)]


def test_remove_asset_values_checks_each_path() -> None:
    target, other = str(uuid.uuid4()), str(uuid.uuid4())

    def img(ref: str) -> dict[str, Any]:
        return {"_type": "image", "asset": {"_type": "reference", "_ref": ref}}

    data: dict[str, Any] = {
        "a": img(target),
        "b": img(other),
        "list": [img(target), img(other), img(target)],
        "seo": {"image": img(target)},
    }
    paths = ["a", "b", "list[0]", "list[2]", "seo.image", "missing", "list[9]", "a[0]", "x..y"]
    assert remove_asset_values(data, paths, target) == 4
    assert data == {"b": img(other), "list": [img(other)], "seo": {}}


# Tenancy and capabilities


async def test_other_tenants_cannot_read_or_delete(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID
) -> None:
    asset = await upload(cms, assets, org, png())
    rival = await cms.org("rival")
    # Every capability: only Row-Level Security stands in the way.
    async with cms.api.context(rival, capabilities=None) as ctx:
        assert await assets.find_by_id(ctx, asset.id) is None
        assert (await assets.find(ctx)).total == 0
        assert await assets.documents_using(ctx, asset.id) == []
    for attempt in (
        lambda ctx: assets.delete(ctx, asset.id, force=True),
        lambda ctx: assets.update(ctx, asset.id, title="mine"),
    ):
        async with cms.api.context(rival, capabilities=None) as ctx:
            with pytest.raises(NotFoundError):
                await attempt(ctx)
    assert await asset_row(cms, asset.id) is not None


async def test_a_parent_reads_but_does_not_delete_a_childs_asset(
    cms: CMS, assets: AssetsAPI, org: uuid.UUID
) -> None:
    child = await cms.org("acme-child", parent=org)
    asset = await upload(cms, assets, child, png())
    async with cms.api.context(org, capabilities=None) as ctx:
        assert await assets.find_by_id(ctx, asset.id) is not None
    async with cms.api.context(org, capabilities=None) as ctx:
        with pytest.raises(ForbiddenError):
            await assets.delete(ctx, asset.id)
    async with cms.api.context(child, capabilities=None) as ctx:
        assert await assets.find_by_id(ctx, asset.id) is not None
    # A child does not see its parent's assets.
    parents = await upload(cms, assets, org, jpeg())
    async with cms.api.context(child, capabilities=None) as ctx:
        assert await assets.find_by_id(ctx, parents.id) is None


async def test_capabilities(cms: CMS, assets: AssetsAPI, org: uuid.UUID) -> None:
    asset = await upload(cms, assets, org, png())
    viewer = frozenset({"asset.read"})
    async with cms.api.context(org, capabilities=viewer) as ctx:
        assert await assets.find_by_id(ctx, asset.id) is not None
        for call in (
            assets.upload(ctx, png()),
            assets.update(ctx, asset.id, title="x"),
            assets.delete(ctx, asset.id),
        ):
            with pytest.raises(ForbiddenError):
                await call
    async with cms.api.context(org, capabilities=frozenset()) as ctx:
        with pytest.raises(ForbiddenError):
            await assets.find(ctx)


# Settings


def test_asset_settings() -> None:
    defaults = Settings.from_env({"DATA_DIR": "/srv/cms"})
    assert defaults.asset_folder == Path("/srv/cms/assets")
    assert (defaults.asset_url_prefix, defaults.max_upload_bytes) == ("/assets", 25 * 1024 * 1024)
    custom = Settings.from_env(
        {
            "ASSET_DIR": "/var/files",
            "ASSET_URL_PREFIX": "https://cdn.example.com/media/",
            "MAX_UPLOAD_BYTES": "1000",
        }
    )
    assert custom.asset_folder == Path("/var/files")
    assert (custom.asset_url_prefix, custom.max_upload_bytes) == (
        "https://cdn.example.com/media",
        1000,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MAX_UPLOAD_BYTES": "0"}, "MAX_UPLOAD_BYTES"),
        ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
        ({"MAX_UPLOAD_BYTES": str(2**31)}, "MAX_UPLOAD_BYTES"),
        ({"ASSET_URL_PREFIX": "assets"}, "ASSET_URL_PREFIX"),
        ({"ASSET_URL_PREFIX": "/"}, "ASSET_URL_PREFIX"),
        ({"ASSET_URL_PREFIX": "//cdn/x"}, "ASSET_URL_PREFIX"),
        ({"ASSET_URL_PREFIX": "ftp://host/x"}, "ASSET_URL_PREFIX"),
        ({"ASSET_URL_PREFIX": "/a/{name}"}, "ASSET_URL_PREFIX"),
        ({"ASSET_DIR": __file__}, "ASSET_DIR"),
    ],
)
def test_bad_asset_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
