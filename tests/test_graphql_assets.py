"""Assets over HTTP: uploads by the GraphQL multipart request spec, the served files and their
headers, images resolved on documents, and the error codes."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from server.engine.assets import AssetsAPI, assets_of
from server.engine.postgres import PostgresAdapter
from tests.conftest import GraphQLClient

LIMIT = 64 * 1024

ASSET_FIELDS = """id assetType filename originalFilename mimeType size url width height title alt
description creditLine metadata referenceCount"""
UPLOAD = f"""
mutation($file: Upload!, $title: String, $alt: String, $creditLine: String) {{
  uploadAsset(file: $file, title: $title, alt: $alt, creditLine: $creditLine) {{ {ASSET_FIELDS} }}
}}"""


def png(width: int = 5, height: int = 7) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "green").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def cms_api(cms_adapter: PostgresAdapter, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    """The app with its files in a temporary folder and a small upload limit."""
    from server.app import create_app
    from server.config import Settings
    from server.services import Services

    settings = Settings(
        database_url=cms_adapter.database.url,
        asset_dir=tmp_path / "assets",
        max_upload_bytes=LIMIT,
    )
    services = Services.create(settings, cms_adapter)
    await services.start(connect=False)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        helper = GraphQLClient(services=services, client=client, org=uuid.uuid4(), key="")
        helper.org = await helper.org_named("acme")
        helper.key = await helper.key_for(helper.org)
        yield helper
        await assets_of(services.api).settle()
    # Its schema listener and outbox worker too (the adapter is the `cms_adapter` fixture's, which
    # disconnects it again harmlessly): left running, they would go on in the later tests.
    await services.stop()


def service(gql: GraphQLClient) -> AssetsAPI:
    return assets_of(gql.services.api)


async def upload_request(
    gql: GraphQLClient,
    data: bytes,
    *,
    filename: str = "picture.png",
    content_type: str = "image/png",
    key: str | None = "default",
    **variables: Any,
) -> httpx.Response:
    """A multipart request: `operations`, then `map`, then the file part."""
    operations = {"query": UPLOAD, "variables": {"file": None, **variables}}
    token = gql.key if key == "default" else key
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await gql.client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, data, content_type)},
        headers=headers,
    )


async def upload(gql: GraphQLClient, data: bytes, **options: Any) -> dict[str, Any]:
    response = await upload_request(gql, data, **options)
    payload = response.json()
    assert response.status_code == 200, payload
    assert "errors" not in payload, payload["errors"]
    asset: dict[str, Any] = payload["data"]["uploadAsset"]
    return asset


def error_code(payload: dict[str, Any]) -> str:
    code: str = payload["errors"][0]["extensions"]["code"]
    return code


async def test_upload_and_serve_an_image(cms_api: GraphQLClient) -> None:
    data = png(5, 7)
    asset = await upload(cms_api, data, filename="../../etc/cat.png", title="Cat", alt="A cat")
    assert {k: asset[k] for k in ("assetType", "mimeType", "width", "height", "size")} == {
        "assetType": "image",
        "mimeType": "image/png",
        "width": 5,
        "height": 7,
        "size": len(data),
    }
    assert (asset["title"], asset["alt"], asset["referenceCount"]) == ("Cat", "A cat", 0)
    assert asset["originalFilename"] == "cat.png"
    assert asset["metadata"]["format"] == "PNG"
    assert asset["url"] == f"/assets/{asset['filename']}"

    served = await cms_api.client.get(asset["url"])
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-length"] == str(len(data))
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"].startswith("inline")
    assert "sandbox" in served.headers["content-security-policy"]

    again = await cms_api.client.get(
        asset["url"], headers={"If-None-Match": served.headers["etag"]}
    )
    assert (again.status_code, again.content) == (304, b"")
    head = await cms_api.client.head(asset["url"])
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))

    found = await cms_api.data(
        f"query($id: ID!) {{ asset(id: $id) {{ {ASSET_FIELDS} }} }}", {"id": asset["id"]}
    )
    assert found["asset"] == asset


@pytest.mark.parametrize(
    # No random name: parametrised ids are the same in every pytest-xdist worker.
    "path",
    [
        "/assets/c71950bbfb194f3ca4724dbf7ed0e98b.png",
        "/assets/passwd",
        "/assets/..%2F..%2Fetc%2Fpasswd",
    ],
)
async def test_unknown_files_are_not_found(cms_api: GraphQLClient, path: str) -> None:
    response = await cms_api.client.get(path)
    assert response.status_code == 404


async def test_markup_is_served_as_an_inert_download(cms_api: GraphQLClient) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    asset = await upload(cms_api, svg, filename="logo.svg", content_type="image/svg+xml")
    assert (asset["assetType"], asset["mimeType"]) == ("file", "application/octet-stream")
    assert asset["metadata"]["neutralised"] == "image/svg+xml"
    served = await cms_api.client.get(asset["url"])
    assert served.content == svg
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_a_pdf_is_a_download(cms_api: GraphQLClient) -> None:
    pdf = b"%PDF-1.7\n%%EOF\n"
    asset = await upload(cms_api, pdf, filename="doc.pdf", content_type="application/pdf")
    served = await cms_api.client.get(asset["url"])
    assert served.headers["content-type"] == "application/pdf"
    assert served.headers["content-disposition"].startswith("attachment")


async def test_images_resolve_on_posts_and_count_references(cms_api: GraphQLClient) -> None:
    cover = await upload(cms_api, png(40, 30), title="Cover")
    unused = await upload(cms_api, png(1, 1), title="Spare")
    created = await cms_api.data(
        """mutation($data: PostDataInput!) { createPost(data: $data, publish: true) {
             id coverImage { url width height alt asset { id url width height referenceCount } }
           } }""",
        {
            "data": {
                "title": "Hello",
                "slug": "hello",
                "coverImage": {"assetId": cover["id"], "alt": "on the post"},
            }
        },
    )
    post = created["createPost"]
    assert post["coverImage"] == {
        "url": cover["url"],
        "width": 40,
        "height": 30,
        "alt": "on the post",
        "asset": {
            "id": cover["id"],
            "url": cover["url"],
            "width": 40,
            "height": 30,
            "referenceCount": 1,
        },
    }
    await cms_api.data(
        "mutation($id: ID!, $data: JSON!) { updatePost(id: $id, data: $data) { id } }",
        {
            "id": post["id"],
            "data": {
                "body": [
                    {
                        "_type": "image",
                        "_key": "k",
                        "asset": {"_type": "reference", "_ref": cover["id"]},
                    }
                ]
            },
        },
    )
    usage = await cms_api.data(
        "query($id: ID!) { assetUsage(id: $id) { documentId documentType plane fieldPath } }",
        {"id": cover["id"]},
    )
    assert sorted((u["plane"], u["fieldPath"]) for u in usage["assetUsage"]) == [
        ("draft", "body[0]"),
        ("draft", "coverImage"),
        ("published", "coverImage"),
    ]
    assert {u["documentId"] for u in usage["assetUsage"]} == {post["id"]}

    pages = await cms_api.data(
        """{ inUse: allAsset(usage: "in-use") { totalDocs docs { id referenceCount } }
             unused: allAsset(usage: "unused") { totalDocs docs { id referenceCount } } }"""
    )
    assert pages["inUse"] == {"totalDocs": 1, "docs": [{"id": cover["id"], "referenceCount": 1}]}
    assert pages["unused"] == {"totalDocs": 1, "docs": [{"id": unused["id"], "referenceCount": 0}]}


async def test_all_asset_pages(cms_api: GraphQLClient) -> None:
    names = ["b.png", "a.png", "c.png"]
    for name in names:
        await upload(cms_api, png(), filename=name)
    result = await cms_api.data(
        """{ allAsset(sort: "name-asc", limit: 2, assetType: "image", mimeType: "image/*") {
             docs { originalFilename } totalDocs limit offset page totalPages hasNextPage hasPrevPage
           } }"""
    )
    assert result["allAsset"] == {
        "docs": [{"originalFilename": "a.png"}, {"originalFilename": "b.png"}],
        "totalDocs": 3,
        "limit": 2,
        "offset": 0,
        "page": 1,
        "totalPages": 2,
        "hasNextPage": True,
        "hasPrevPage": False,
    }
    second = await cms_api.data(
        '{ allAsset(sort: "name-asc", limit: 2, offset: 2, search: "PNG") {'
        " docs { originalFilename } page hasNextPage hasPrevPage } }"
    )
    assert second["allAsset"] == {
        "docs": [{"originalFilename": "c.png"}],
        "page": 2,
        "hasNextPage": False,
        "hasPrevPage": True,
    }


async def test_update_and_delete(cms_api: GraphQLClient) -> None:
    asset = await upload(cms_api, png(), title="T", alt="A", creditLine="C")
    updated = await cms_api.data(
        """mutation($id: ID!) { updateAsset(id: $id, title: "New", alt: null) {
             title alt creditLine description } }""",
        {"id": asset["id"]},
    )
    assert updated["updateAsset"] == {
        "title": "New",
        "alt": None,
        "creditLine": "C",
        "description": None,
    }
    post = await cms_api.data(
        """mutation($data: PostDataInput!) { createPost(data: $data) { id } }""",
        {"data": {"title": "P", "coverImage": {"assetId": asset["id"]}}},
    )
    delete = (
        "mutation($id: ID!, $force: Boolean) { deleteAsset(id: $id, force: $force) { success id } }"
    )
    refused = await cms_api(delete, {"id": asset["id"]})
    assert error_code(refused) == "CONFLICT"
    assert (await cms_api.client.get(asset["url"])).status_code == 200

    forced = await cms_api.data(delete, {"id": asset["id"], "force": True})
    assert forced["deleteAsset"] == {"success": True, "id": asset["id"]}
    await service(cms_api).settle()
    assert (await cms_api.client.get(asset["url"])).status_code == 404
    gone = await cms_api.data("query($id: ID!) { asset(id: $id) { id } }", {"id": asset["id"]})
    assert gone["asset"] is None
    draft = await cms_api.data(
        'query($id: ID!) { post(id: $id, perspective: "draft") { coverImage { url } _raw } }',
        {"id": post["createPost"]["id"]},
    )
    assert draft["post"]["coverImage"] is None
    assert "coverImage" not in draft["post"]["_raw"]


async def test_error_codes(cms_api: GraphQLClient) -> None:
    too_big = await upload_request(
        cms_api, b"x" * (LIMIT + 1), filename="big.txt", content_type="text/plain"
    )
    assert too_big.status_code == 200
    assert error_code(too_big.json()) == "PAYLOAD_TOO_LARGE"

    mismatch = await upload_request(cms_api, b"%PDF-1.4\n", content_type="image/png")
    assert error_code(mismatch.json()) == "BAD_USER_INPUT"
    assert mismatch.json()["errors"][0]["extensions"]["field"] == "file"

    anonymous = await upload_request(cms_api, png(), key=None)
    assert error_code(anonymous.json()) == "UNAUTHENTICATED"

    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    refused = await upload_request(cms_api, png(), key=viewer)
    assert error_code(refused.json()) == "FORBIDDEN"
    asset = await upload(cms_api, png())
    for mutation in (
        'mutation($id: ID!) { updateAsset(id: $id, title: "x") { id } }',
        "mutation($id: ID!) { deleteAsset(id: $id) { success } }",
    ):
        assert error_code(await cms_api(mutation, {"id": asset["id"]}, key=viewer)) == "FORBIDDEN"
    seen = await cms_api.data(
        "query($id: ID!) { asset(id: $id) { id } }", {"id": asset["id"]}, key=viewer
    )
    assert seen["asset"] == {"id": asset["id"]}

    missing = await cms_api(
        "mutation($id: ID!) { deleteAsset(id: $id) { success } }", {"id": str(uuid.uuid4())}
    )
    assert error_code(missing) == "NOT_FOUND"
    malformed = await cms_api('{ asset(id: "not-a-uuid") { id } }')
    assert error_code(malformed) == "BAD_USER_INPUT"
    bad_filter = await cms_api('{ allAsset(usage: "sometimes") { totalDocs } }')
    assert error_code(bad_filter) == "BAD_USER_INPUT"


async def test_a_body_over_the_request_limit_is_refused_with_a_code(cms_api: GraphQLClient) -> None:
    response = await upload_request(cms_api, b"x" * (2 * 1024 * 1024), content_type="text/plain")
    assert response.status_code in (200, 413)
    assert error_code(response.json()) == "PAYLOAD_TOO_LARGE"


async def test_other_organizations_cannot_see_or_delete(cms_api: GraphQLClient) -> None:
    asset = await upload(cms_api, png())
    rival = await cms_api.key_for(await cms_api.org_named("rival"))
    seen = await cms_api.data(
        "query($id: ID!) { asset(id: $id) { id } }", {"id": asset["id"]}, key=rival
    )
    assert seen["asset"] is None
    listed = await cms_api.data("{ allAsset { totalDocs } }", key=rival)
    assert listed["allAsset"]["totalDocs"] == 0
    deleted = await cms_api(
        "mutation($id: ID!) { deleteAsset(id: $id, force: true) { success } }",
        {"id": asset["id"]},
        key=rival,
    )
    assert error_code(deleted) == "NOT_FOUND"
    # Files are public by URL: the unguessable name is the only key.
    assert (await cms_api.client.get(asset["url"])).status_code == 200
