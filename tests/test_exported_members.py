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
