"""The routed methods take exactly the keyword arguments of the installed openai's methods."""

from __future__ import annotations

import pytest
from openai.resources.chat.completions import Completions

from router._arguments import accepted, check_arguments


def test_the_accepted_names_are_openais_own_without_self() -> None:
    names = accepted(Completions.create)
    assert {"messages", "model", "stream", "extra_headers", "extra_body", "timeout"} <= names
    assert "self" not in names and "max_token" not in names


def test_known_names_pass_and_the_first_unknown_one_is_named_as_python_would() -> None:
    allowed = frozenset({"model", "messages"})
    check_arguments({"model": "auto", "messages": []}, allowed, "Completions.create")
    with pytest.raises(TypeError) as raised:
        check_arguments({"model": "auto", "zeta": 1, "alpha": 2}, allowed, "Completions.create")
    assert str(raised.value) == "Completions.create() got an unexpected keyword argument 'alpha'"
