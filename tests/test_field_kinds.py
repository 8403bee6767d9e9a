"""The field-kind table (`server/model/field_kinds.py`): every scalar field type has what each layer
needs, taken from its one row."""

from __future__ import annotations

import pytest

from server.content import filters
from server.graphql import typegen
from server.graphql import types as static
from server.model.field_kinds import SCALAR_TYPES, VALUE_KINDS
from server.model.types import SCALAR_TYPES as REGISTERED_SCALARS
from server.model.types import STRING_TYPES


@pytest.mark.parametrize("name", sorted(SCALAR_TYPES))
def test_each_scalar_type_has_a_filter_an_operator_set_and_a_sql_type(name: str) -> None:
    kind = SCALAR_TYPES[name].kind
    assert name in typegen._FILTERS
    assert filters._SCALAR_KINDS[name] == kind
    assert filters._KIND_OPERATORS[kind] == VALUE_KINDS[kind].operators
    assert filters._PG_TYPES[kind] == VALUE_KINDS[kind].sql_type


@pytest.mark.parametrize("name", sorted(set(SCALAR_TYPES) - {"number"}))
def test_each_non_number_scalar_type_has_a_graphql_type_and_a_converter(name: str) -> None:
    assert name in typegen._SCALARS
    assert name in typegen._SCALAR_CONVERTERS
    assert typegen._SCALAR_KINDS[name].name == SCALAR_TYPES[name].kind


def test_the_registry_knows_the_same_scalar_and_string_types() -> None:
    assert frozenset(SCALAR_TYPES) == REGISTERED_SCALARS
    assert {"string", "text", "slug", "url", "date", "datetime"} == STRING_TYPES


def test_filter_inputs_follow_the_value_kind() -> None:
    assert typegen._FILTERS["slug"] is static.StringFilter
    assert typegen._FILTERS["datetime"] is static.DateTimeFilter
    assert typegen._FILTERS["number"] is static.NumberFilter


def test_dates_do_not_use_containment_and_text_does() -> None:
    assert "date" not in filters._CONTAINMENT_KINDS
    assert "datetime" not in filters._CONTAINMENT_KINDS
    assert {"text", "number", "boolean", "reference"} <= filters._CONTAINMENT_KINDS
