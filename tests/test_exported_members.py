"""The public surface is what ``__all__`` says, and every name in it exists."""

import router


def test_all_exported_members_exist() -> None:
    for name in router.__all__:
        assert hasattr(router, name), name


def test_the_clients_and_errors_are_public() -> None:
    assert {"OpenAI", "AsyncOpenAI", "NoCandidateError", "StreamInterruptedError", "RoutingRecord"} <= set(
        router.__all__
    )
