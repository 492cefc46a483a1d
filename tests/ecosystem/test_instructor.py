"""instructor over router's clients: structured outputs in TOOLS and JSON_SCHEMA modes, partial and
iterable streams, validation retries, and API errors as instructor reports them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import openai
import pytest
from pydantic import AfterValidator, BaseModel
from router_fakes import FakeProviders, ModelScript

from router import AsyncOpenAI, OpenAI

from .conftest import SOLO, Route, answered, bad_request, rate_limited

instructor = pytest.importorskip("instructor")
InstructorRetryException = pytest.importorskip("instructor.core").InstructorRetryException

MODES = pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
QUESTION = [{"role": "user", "content": "Extract: Ada is 36 and lives in London."}]


class Person(BaseModel):
    name: str
    age: int


def _not_example(value: str) -> str:
    if value == "example":
        raise ValueError("name must be a real name, not a placeholder")
    return value


class CheckedPerson(BaseModel):
    """Valid JSON from the fake is "example"; this validator refuses it, so instructor must retry."""

    name: Annotated[str, AfterValidator(_not_example)]
    age: int


@MODES
def test_response_model_is_filled_on_every_route(
    client: OpenAI, fake: FakeProviders, route: Route, mode: str
) -> None:
    patched = instructor.from_openai(client, mode=instructor.Mode[mode])
    person = patched.chat.completions.create(model=route.name, response_model=Person, messages=QUESTION)
    assert person.model_dump() == {"name": "example", "age": 1}
    answered(fake, route)


@MODES
async def test_async_response_model_is_filled_on_every_route(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, mode: str
) -> None:
    patched = instructor.from_openai(aclient, mode=instructor.Mode[mode])
    person = await patched.chat.completions.create(model=route.name, response_model=Person, messages=QUESTION)
    assert person.model_dump() == {"name": "example", "age": 1}
    answered(fake, route)


@MODES
def test_validation_error_is_sent_back_and_the_retry_succeeds(
    client: OpenAI, fake: FakeProviders, mode: str
) -> None:
    wrong = json.dumps({"name": "example", "age": 36})
    fake.script(ModelScript("gemini-2.5-flash-lite", replies=(wrong, json.dumps({"name": "Ada", "age": 36}))))
    patched = instructor.from_openai(client, mode=instructor.Mode[mode])
    person = patched.chat.completions.create(
        model="via-gemini", response_model=CheckedPerson, messages=QUESTION, max_retries=2
    )
    assert person.model_dump() == {"name": "Ada", "age": 36}
    asked = fake.requests_for("gemini-2.5-flash-lite")
    assert len(asked) == 2
    assert "name must be a real name" in json.dumps(asked[1].body)


async def test_async_validation_retries_give_up_with_instructors_exception(
    aclient: AsyncOpenAI, fake: FakeProviders
) -> None:
    patched = instructor.from_openai(aclient, mode=instructor.Mode.TOOLS)
    with pytest.raises(InstructorRetryException) as caught:
        await patched.chat.completions.create(
            model="via-anthropic", response_model=CheckedPerson, messages=QUESTION, max_retries=2
        )
    assert caught.value.n_attempts == 3  # the first try and two retries, each refused by the validator
    assert len(fake.requests_for("claude-haiku-4-5")) == 3


def test_create_partial_streams_growing_objects(client: OpenAI, fake: FakeProviders, route: Route) -> None:
    patched = instructor.from_openai(client, mode=instructor.Mode.TOOLS)
    stream: Iterator[Person] = patched.chat.completions.create_partial(
        model=route.name, response_model=Person, messages=QUESTION
    )
    partials = list(stream)
    assert (partials[-1].name, partials[-1].age) == ("example", 1)
    assert fake.requests_for(route.answered_by)[-1].stream


async def test_async_create_partial_streams_growing_objects(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route
) -> None:
    patched = instructor.from_openai(aclient, mode=instructor.Mode.JSON_SCHEMA)
    stream: AsyncIterator[Person] = patched.chat.completions.create_partial(
        model=route.name, response_model=Person, messages=QUESTION
    )
    partials = [partial async for partial in stream]
    assert (partials[-1].name, partials[-1].age) == ("example", 1)
    answered(fake, route)


def test_create_iterable_yields_each_extracted_object(
    client: OpenAI, fake: FakeProviders, route: Route
) -> None:
    fake.script(
        ModelScript(
            route.answered_by,
            replies=(json.dumps({"tasks": [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]}),),
        )
    )
    patched = instructor.from_openai(client, mode=instructor.Mode.TOOLS)
    people = list(
        patched.chat.completions.create_iterable(model=route.name, response_model=Person, messages=QUESTION)
    )
    assert [p.model_dump() for p in people] == [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]


async def test_async_create_iterable_yields_each_extracted_object(
    aclient: AsyncOpenAI, fake: FakeProviders
) -> None:
    fake.script(
        ModelScript("claude-haiku-4-5", replies=(json.dumps({"tasks": [{"name": "Ada", "age": 36}]}),))
    )
    patched = instructor.from_openai(aclient, mode=instructor.Mode.TOOLS)
    people = [
        person
        async for person in patched.chat.completions.create_iterable(
            model="via-anthropic", response_model=Person, messages=QUESTION
        )
    ]
    assert [p.model_dump() for p in people] == [{"name": "Ada", "age": 36}]


def test_rate_limit_is_not_retried_and_is_the_cause_of_instructors_error(
    client: OpenAI, fake: FakeProviders
) -> None:
    rate_limited(fake)
    patched = instructor.from_openai(client)
    with pytest.raises(InstructorRetryException) as caught:
        patched.chat.completions.create(model=SOLO, response_model=Person, messages=QUESTION, max_retries=3)
    assert isinstance(caught.value.__cause__, openai.RateLimitError)
    assert len(fake.requests_for("gpt-4o-mini")) == 1


async def test_bad_request_is_the_cause_of_instructors_error(
    aclient: AsyncOpenAI, fake: FakeProviders
) -> None:
    bad_request(fake)
    patched = instructor.from_openai(aclient)
    with pytest.raises(InstructorRetryException) as caught:
        await patched.chat.completions.create(model=SOLO, response_model=Person, messages=QUESTION)
    cause = caught.value.__cause__
    assert isinstance(cause, openai.BadRequestError)
    assert cause.status_code == 400
