"""What to answer, decided once for all three protocols.

Each protocol module parses its request into a ``Conversation`` and renders an ``Answer``; the choice
between text, a tool call or a JSON instance, the usage numbers and the stream pieces live here only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .instance import minimal_instance
from .script import ModelScript
from .tokens import reply_text, split_chunks, text_tokens, tool_call_tokens

Finish = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    parameters: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Conversation:
    """A request reduced to what decides the answer, whatever protocol it came in."""

    model: str
    stream: bool
    prompt_tokens: int
    question: str
    after_tool_result: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"
    """"auto", "none", "required", or the name of the tool the caller forces."""
    json_schema: Mapping[str, Any] | None = None
    json_object: bool = False
    max_tokens: int | None = None
    include_usage: bool = False
    choices: int = 1
    """OpenAI's ``n``: that many choices, each billed (the prompt once)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str
    """The arguments as JSON text, the way OpenAI carries them; Gemini and Anthropic re-parse it."""

    def argument_pieces(self) -> tuple[str, ...]:
        """Two stream pieces, as providers send arguments in several deltas."""
        middle = len(self.arguments) // 2
        if middle == 0:
            return (self.arguments,)
        return (self.arguments[:middle], self.arguments[middle:])

    def arguments_object(self) -> Any:
        return json.loads(self.arguments)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tool_call: ToolCall | None
    finish: Finish
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reported_usage: Any = None
    """The script's usage object, reported verbatim instead of the true figures."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def text_pieces(self) -> tuple[str, ...]:
        return split_chunks(self.text) if self.text else ()


def _chosen_tool(conv: Conversation) -> Tool | None:
    if not conv.tools or conv.tool_choice == "none":
        return None
    # After a tool result the model answers in text, unless the caller forces a tool: a forced choice
    # ("required" or a name) holds on every turn, as with the real APIs (structured-output retries).
    if conv.after_tool_result and conv.tool_choice == "auto":
        return None
    for tool in conv.tools:
        if tool.name == conv.tool_choice:
            return tool
    if conv.after_tool_result:
        # "required" after a tool result: the last tool listed, as agent frameworks list the user's
        # tools first and their own answer tool (pydantic-ai's final_result) last; the first tool again
        # would loop forever.
        return conv.tools[-1]
    return conv.tools[0]


def decide(
    conv: Conversation,
    script: ModelScript,
    *,
    content_filtered: bool = False,
    scripted_reply: str | None = None,
) -> Answer:
    """The answer to ``conv`` under ``script``: pure, so every protocol agrees on it.

    ``scripted_reply`` (the turn's entry of ``script.replies``) replaces the text or the tool call's
    arguments.
    """
    prompt = script.prompt_tokens if script.prompt_tokens is not None else conv.prompt_tokens
    cached = min(script.cached_tokens, prompt)
    finish: Finish = "stop"
    tool_call: ToolCall | None = None
    text = ""
    if content_filtered:
        finish = "content_filter"
        completion = 0
    elif (tool := _chosen_tool(conv)) is not None:
        arguments = (
            scripted_reply if scripted_reply is not None else json.dumps(minimal_instance(tool.parameters))
        )
        tool_call = ToolCall(tool.name, arguments)
        finish = "tool_calls"
        completion = tool_call_tokens(tool.name, arguments)
    else:
        if scripted_reply is not None:
            text = scripted_reply
        elif script.reply is not None:
            text = script.reply
        elif conv.json_schema is not None:
            text = json.dumps(minimal_instance(conv.json_schema))
        elif conv.json_object:
            text = json.dumps({"answer": reply_text(conv.model, conv.question)})
        else:
            text = reply_text(conv.model, conv.question, after_tool_result=conv.after_tool_result)
        completion = text_tokens(text)
        if conv.max_tokens is not None and completion > conv.max_tokens:
            text = text[: conv.max_tokens * 4]
            completion = text_tokens(text)
            finish = "length"
    if script.completion_tokens is not None:
        completion = script.completion_tokens
    completion = max(completion, 0) * conv.choices
    return Answer(text, tool_call, finish, prompt, completion, cached, script.usage)
