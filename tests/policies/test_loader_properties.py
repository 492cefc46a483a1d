"""Loader properties: YAML and dicts agree, only PolicyError escapes, ``$``-free text is untouched."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from policies._env import expand
from policies.loader import PolicyError, parse_policy, policy_from_dict
from providers.catalog import CAPABILITIES

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Printable text: YAML cannot carry every code point (surrogates, most control characters).
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20)
names = text.filter(bool)
prices = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
scores = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


def dump(data: Any, *, flow: bool) -> str:
    """YAML for ``data``; examples that ruamel's own parser cannot read back are not about us."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(data, out)
    text_form = out.getvalue()
    try:
        # ruamel's emitter writes some flow scalars unquoted that its parser rejects or reads
        # otherwise (``{provider: ?0}``, ``{?0: x}``): a dumper bug, not a loader one.
        again = io.StringIO()
        yaml.dump(YAML(typ="safe", pure=True).load(text_form), again)
        faithful = again.getvalue() == text_form
    except YAMLError:
        faithful = False
    if not faithful:
        reject()
    return text_form


def escape_dollars(data: Any) -> Any:
    """What a user writes in YAML for a value that holds a literal ``$``."""
    if isinstance(data, str):
        return data.replace("$", "$$")
    if isinstance(data, dict):
        return {k: escape_dollars(v) for k, v in data.items()}
    if isinstance(data, list):
        return [escape_dollars(v) for v in data]
    return data


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


model_specs = st.fixed_dictionaries(
    {"provider": names},
    optional={
        "model": names,
        "api_base": text.filter(lambda t: "?" not in t and "#" not in t).map(lambda t: "https://h.test/" + t),
        "api_key_env": st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True),
        "api_version": st.sampled_from(["2024-10-21", "2025-01-01-preview"]),
        "headers": st.dictionaries(names, text, max_size=3),
        "input_cost_per_mtok": prices,
        "cached_input_cost_per_mtok": prices,
        "output_cost_per_mtok": prices,
        "context_window": st.integers(1, 10**7),
        "max_output_tokens": st.integers(1, 10**6),
        "supports": st.lists(st.sampled_from(sorted(CAPABILITIES)), unique=True),
        "quality": st.dictionaries(st.from_regex(r"[a-z0-9_.\-]{1,12}", fullmatch=True), scores, max_size=3),
    },
)


@st.composite
def valid_policies(draw: st.DrawFn) -> dict[str, Any]:
    models = draw(st.dictionaries(names, model_specs, min_size=1, max_size=4))
    model_names = sorted(models)
    routes: dict[str, Any] = {}
    for route_name in draw(st.lists(names.filter(lambda n: n not in models), max_size=3, unique=True)):
        picked = draw(st.permutations(model_names))
        split = draw(st.integers(0, len(picked)))
        route: dict[str, Any] = draw(optional(strategy=st.just("ordered")))
        if split > 0 and draw(st.booleans()):
            route["candidates"] = list(picked[:split])
        if draw(st.booleans()):
            route["fallbacks"] = list(picked[split:])
        routes[route_name] = route
    policy: dict[str, Any] = {"models": models}
    ledgers = st.sampled_from(["memory://", "redis://localhost:6379/0"]) | text.filter(
        lambda t: "?" not in t
    ).map(lambda t: "sqlite:///d/" + t)
    policy.update(draw(optional(version=st.just(1), ledger=ledgers)))
    empty_routes_section: bool = draw(st.booleans())
    if routes or empty_routes_section:
        policy["routes"] = routes
    features: dict[str, Any] = draw(
        st.dictionaries(names.filter(lambda n: n != "*"), st.just({}), max_size=2)
    )
    if features:
        policy["features"] = features
    return policy


@FAST
@given(valid_policies(), st.booleans())
def test_any_valid_policy_dumped_to_yaml_parses_to_the_same_policy_as_from_dict(
    data: dict[str, Any], flow: bool
) -> None:
    text_form = dump(escape_dollars(data), flow=flow)
    assert parse_policy(text_form, env={}) == policy_from_dict(data, source="<string>")


YAML_TOKENS = [*" \n\t:-,[]{}?&*!|>'\"#%@`$.~0189ae_", "models", "provider", "  ", "- ", ": ", "${A", "<<"]
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join)


@FAST
@given(st.text(max_size=200) | YAMLISH)
def test_arbitrary_text_raises_nothing_but_policy_error(text_form: str) -> None:
    try:
        parse_policy(text_form, env={})
    except PolicyError as exc:
        assert exc.problems
        assert all("\n" not in str(p) for p in exc.problems)


SCHEMA_WORDS = [
    "version", "ledger", "models", "routes", "features", "provider", "model", "api_base", "supports",
    "quality", "context_window", "input_cost_per_mtok", "strategy", "candidates", "fallbacks", "headers",
    "source", "a", "b",
]  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text | st.sampled_from(SCHEMA_WORDS)
keys = st.sampled_from(SCHEMA_WORDS) | text
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


@FAST
@given(st.dictionaries(keys, nested, max_size=5) | nested, st.booleans())
def test_arbitrary_nested_yaml_raises_nothing_but_policy_error(data: Any, flow: bool) -> None:
    try:
        parse_policy(dump(data, flow=flow), env={})
    except PolicyError as exc:
        assert exc.problems


@FAST
@given(valid_policies(), st.data())
def test_a_valid_policy_with_one_value_broken_raises_nothing_but_policy_error(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    node: Any = data
    while isinstance(node, dict) and node:
        key = draw.draw(st.sampled_from(sorted(node)))
        if not isinstance(node[key], dict) or draw.draw(st.booleans()):
            node[key] = draw.draw(nested)
            break
        node = node[key]
    try:
        policy_from_dict(data)
    except PolicyError as exc:
        assert exc.problems
    try:
        parse_policy(dump(data, flow=False), env={})
    except PolicyError as exc:
        assert exc.problems


odd_values = st.recursive(
    scalars | st.binary(max_size=3) | st.frozensets(st.integers(), max_size=2) | st.just(object()),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(
            st.one_of(keys, st.integers(), st.none(), st.tuples(st.integers())), inner, max_size=3
        )
    ),
    max_leaves=15,
)


@FAST
@given(st.dictionaries(st.one_of(keys, st.integers()), odd_values, max_size=5))
def test_arbitrary_python_values_in_a_dict_raise_nothing_but_policy_error(data: dict[Any, Any]) -> None:
    try:
        policy_from_dict(data)
    except PolicyError as exc:
        assert exc.problems


@settings(max_examples=200, deadline=None)
@given(st.text().filter(lambda s: "$" not in s), st.dictionaries(st.text(), st.text(), max_size=3))
def test_env_interpolation_is_the_identity_on_text_without_dollars(value: str, env: dict[str, str]) -> None:
    result = expand(value, env)
    assert result.text == value
    assert result.problems == ()


@FAST
@given(text.filter(lambda s: "$" not in s))
def test_a_policy_value_without_dollars_is_read_back_unchanged(value: str) -> None:
    policy = parse_policy(
        dump({"models": {"a": {"provider": "openai", "headers": {"x-team": value}}}}, flow=False), env={}
    )
    assert policy.models["a"].headers == {"x-team": value}


def test_a_tagged_value_ruamel_cannot_convert_is_a_policy_error() -> None:
    # Found by hypothesis: ruamel raises a bare ValueError for ``!!float .``.
    with pytest.raises(PolicyError, match="could not be read"):
        parse_policy("models: !!float .\n", source="p.yaml")


def test_text_that_trips_an_assertion_inside_ruamel_is_a_policy_error() -> None:
    # Found by hypothesis: ruamel's scanner asserts on "| #" after blank lines.
    with pytest.raises(PolicyError, match="could not be read"):
        parse_policy("\n\n| #", source="p.yaml")
