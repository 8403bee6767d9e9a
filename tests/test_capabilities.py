from __future__ import annotations

import pytest

from server.access.capabilities import (
    ALL_CAPABILITIES,
    BUILT_IN_ROLES,
    CAPABILITIES,
    has_capability,
    normalize_capabilities,
    ordered,
)
from server.errors import InvalidInputError

DOCUMENT = {
    "document.read",
    "document.create",
    "document.update",
    "document.delete",
    "document.publish",
    "document.unpublish",
    "document.schedule",
}
ASSET = {"asset.read", "asset.upload", "asset.delete"}
ORGANIZATION = (
    DOCUMENT
    | ASSET
    | {
        "member.invite",
        "member.remove",
        "member.changeRole",
        "apiKey.manage",
        "role.manage",
        "org.settings",
        "webhook.manage",
    }
)


def test_the_capability_strings() -> None:
    assert set(CAPABILITIES) == ORGANIZATION | {"schema.manage"}
    assert len(CAPABILITIES) == len(ALL_CAPABILITIES) == 18


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", {"document.read", "asset.read"}),
        ("editor", DOCUMENT | ASSET),
        ("admin", ORGANIZATION),
        ("owner", ORGANIZATION),
    ],
)
def test_built_in_roles(role: str, expected: set[str]) -> None:
    assert BUILT_IN_ROLES[role] == expected
    assert "schema.manage" not in BUILT_IN_ROLES[role]


def test_there_are_exactly_four_built_in_roles() -> None:
    assert list(BUILT_IN_ROLES) == ["owner", "admin", "editor", "viewer"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], set()),
        (["document.read"], {"document.read"}),
        (["document.update"], {"document.update", "document.read"}),
        (["document.publish", "document.publish"], {"document.publish", "document.read"}),
        (["asset.upload"], {"asset.upload", "asset.read"}),
        (
            ["asset.delete", "document.create"],
            {"asset.delete", "asset.read", "document.create", "document.read"},
        ),
        (["member.invite"], {"member.invite"}),
        (("role.manage", "org.settings"), {"role.manage", "org.settings"}),
    ],
)
def test_normalize_adds_the_implied_read(given: list[str], expected: set[str]) -> None:
    assert normalize_capabilities(given) == expected


@pytest.mark.parametrize(
    "bad", ["document.write", "Document.read", "", "document.*", "plugin.settings.manage"]
)
def test_normalize_rejects_an_unknown_capability_by_name(bad: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        normalize_capabilities(["document.read", bad])
    assert repr(bad) in caught.value.message
    assert caught.value.path == "capabilities"


@pytest.mark.parametrize("bad", ["document.read", [1], [None]])
def test_normalize_rejects_what_is_not_a_list_of_strings(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        normalize_capabilities(bad)  # type: ignore[arg-type]


def test_ordered_is_the_canonical_order() -> None:
    assert ordered({"asset.read", "document.update", "document.read"}) == [
        "document.read",
        "document.update",
        "asset.read",
    ]
    assert ordered(ALL_CAPABILITIES) == list(CAPABILITIES)


def test_has_capability() -> None:
    editor = BUILT_IN_ROLES["editor"]
    assert has_capability(editor, "document.publish")
    assert not has_capability(editor, "member.invite")
    assert not has_capability(frozenset(), "document.read")


def test_has_capability_refuses_a_typo() -> None:
    with pytest.raises(ValueError, match=r"document\.raed"):
        has_capability(BUILT_IN_ROLES["owner"], "document.raed")
