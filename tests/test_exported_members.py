"""The public surface is what ``__all__`` says, and every name in it exists."""

import router


def test_all_exported_members_exist() -> None:
    for name in router.__all__:
        assert hasattr(router, name), name


def test_the_clients_and_errors_are_public() -> None:
    assert {"OpenAI", "AsyncOpenAI", "NoCandidateError", "StreamInterruptedError", "RoutingRecord"} <= set(
        router.__all__
    )


def test_every_error_and_routing_of_are_public() -> None:
    assert {
        "RouterError",
        "PolicyError",
        "LedgerError",
        "BudgetExceededError",
        "DeadlineExceededError",
        "ModelNotFoundError",
        "CoolingDownError",
        "RateLimitCooldownError",
        "ServerCooldownError",
        "routing_of",
    } <= set(router.__all__)
    from policies.loader import PolicyError
    from router.ledger import LedgerError

    assert router.PolicyError is PolicyError and router.LedgerError is LedgerError


def test_every_exported_name_is_its_home_modules_object_and_listed_by_dir() -> None:
    import importlib

    homes = {
        "PolicyError": "policies.errors",
        "TransportLimits": "providers._aiohttp",
        "LedgerError": "router.ledger",
        "RoutingRecord": "router._routing",
        "RoutedChatCompletion": "router._response",
        "RoutedStream": "router._streaming",
        "BudgetExceededError": "router._exceptions",
        "routing_of": "router._exceptions",
    }
    for name, module in homes.items():
        assert getattr(router, name) is getattr(importlib.import_module(module), name), name
    errors = importlib.import_module("router._exceptions")
    for name in errors.__all__:  # every error, and routing_of
        assert getattr(router, name) is getattr(errors, name), name
    from router.logging import configure

    assert router.configure_logging is configure
    assert set(router.__all__) <= set(dir(router))


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    import pytest

    with pytest.raises(AttributeError, match="'router' has no attribute 'NoSuchThing'"):
        router.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
