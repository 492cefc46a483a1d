"""``router.logging.configure``: JSON lines or console lines on the router logger, one handler, redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import router.logging as router_logging
from policies.schema import LoggingSpec
from router._events import Events, _sink
from router._routing import Usage
from tests.router.event_helpers import (
    ANSWER,
    API_KEY,
    MESSAGES,
    PROMPT,
    WARNING,
    failed_record,
    fallback_record,
    rate_limit_error,
    router_logger_fixture,  # noqa: F401 - the fixture router_logger
    stream_record,
)

EVENTS = Events(policy_hash="0123456789ab")


def run(events: Events) -> None:
    """A workload's events: a fallback with a budget warning, a streamed request, a failure."""
    record = fallback_record()
    events.decided(record, messages=MESSAGES)
    for number, attempt in enumerate(record.attempts, 1):
        events.attempt(record.request_id, record.feature, attempt, number)
    events.budget(record.request_id, record.feature, WARNING)
    events.completed(record, content=ANSWER)
    streamed = stream_record()
    events.decided(streamed, messages=MESSAGES)
    events.attempt(streamed.request_id, streamed.feature, streamed.attempts[0], 1)
    events.completed(streamed, content=ANSWER)
    failed = failed_record()
    events.decided(failed, messages=MESSAGES)
    events.failed(failed, rate_limit_error())


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_of_a_run_parse_and_carry_every_field(router_logger: logging.Logger) -> None:
    stream = io.StringIO()
    router_logging.configure(json=True, stream=stream)
    run(EVENTS)
    parsed = lines(stream)
    assert [(p["event"], p["level"], p["request_id"]) for p in parsed] == [
        ("route.decided", "info", "req_fallback"),
        ("route.attempt", "warning", "req_fallback"),
        ("route.attempt", "info", "req_fallback"),
        ("budget.warning", "warning", "req_fallback"),
        ("route.completed", "info", "req_fallback"),
        ("route.decided", "info", "req_stream"),
        ("route.attempt", "info", "req_stream"),
        ("route.completed", "info", "req_stream"),
        ("route.decided", "info", "req_failed"),
        ("route.failed", "error", "req_failed"),
    ]
    for line in parsed:
        assert list(line)[:4] == ["timestamp", "level", "logger", "event"]
        assert line["logger"] == "router" and line["feature"] == "support-bot"
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == UTC.utcoffset(None)
    decided, failed_attempt, answered, budget, completed = parsed[:5]
    assert decided["candidates"][1] == {
        "model": "gpt-4o",
        "provider": "openai",
        "expected_cost_usd": 0.005,
        "fallback": True,
    }
    assert decided["rejected"] == {"phi-4": "context 16,384 < 20,000 needed"}
    assert decided["policy_hash"] == "0123456789ab" and decided["strategy"] == "cheapest"
    assert (failed_attempt["outcome"], failed_attempt["error_class"], failed_attempt["status"]) == (
        "error",
        "server",
        500,
    )
    assert (answered["attempt"], answered["wait_s"], answered["latency_ms"]) == (2, 0.5, 30.0)
    assert budget == {
        **{k: budget[k] for k in ("timestamp", "level", "logger", "event", "request_id", "feature")},
        "scope": "support-bot",
        "window": "day",
        "limit_usd": 10.0,
        "spent_usd": 8.25,
        "reserved_usd": 0.5,
        "threshold": 0.8,
        "model": None,
        "resets_at": 1_700_006_400.0,
    }
    assert {k: completed[k] for k in ("model", "prompt_tokens", "completion_tokens", "cached_tokens")} == {
        "model": "gpt-4o",
        "prompt_tokens": 900,
        "completion_tokens": 120,
        "cached_tokens": 100,
    }
    assert (completed["reasoning_tokens"], completed["cost_usd"], completed["latency_ms"]) == (
        7,
        0.00345,
        543.0,
    )
    assert (completed["attempts"], completed["fallback"], completed["stream"]) == (2, True, False)
    assert parsed[6]["ttft_ms"] == 21.5
    assert (parsed[7]["stream"], parsed[7]["fallback"]) == (True, False)
    assert (parsed[9]["error_type"], parsed[9]["error_class"], parsed[9]["status"]) == (
        "RateLimitError",
        "rate_limited",
        429,
    )


@pytest.mark.parametrize("json_lines", [True, False])
def test_neither_the_prompt_nor_the_key_nor_the_error_text_is_written(
    router_logger: logging.Logger, json_lines: bool
) -> None:
    stream = io.StringIO()
    router_logging.configure(json=json_lines, stream=stream, level="DEBUG")
    run(EVENTS)
    written = stream.getvalue()
    assert written.count("\n") == 10
    for secret in (PROMPT, ANSWER, API_KEY, "Rate limited"):
        assert secret not in written


def test_log_content_writes_the_messages_and_the_answer_but_still_not_the_key(
    router_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    router_logging.configure(stream=stream)
    run(Events(policy_hash="x", log_content=True))
    parsed = lines(stream)
    assert parsed[0]["messages"] == MESSAGES and parsed[4]["content"] == ANSWER
    assert API_KEY not in stream.getvalue()


def test_a_handler_configured_without_content_strips_it_whatever_the_policy(
    router_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    router_logging.configure(stream=stream, log_content=False)
    run(Events(policy_hash="x", log_content=True))
    assert PROMPT not in stream.getvalue() and ANSWER not in stream.getvalue()
    assert len(lines(stream)) == 10


def test_console_lines_are_readable_key_value_lines(router_logger: logging.Logger) -> None:
    stream = io.StringIO()
    router_logging.configure(json=False, stream=stream)
    EVENTS.completed(fallback_record())
    (line,) = stream.getvalue().splitlines()
    expected = (
        "Z [info     ] route.completed                [router] request_id=req_fallback "
        "feature=support-bot route=auto model=gpt-4o provider=openai prompt_tokens=900 "
        "completion_tokens=120 cached_tokens=100 reasoning_tokens=7 cost_usd=0.00345 "
        "latency_ms=543.0 attempts=2 fallback=True stream=False"
    )
    assert line.endswith(expected)
    assert "\x1b[" not in line


def test_configuring_twice_replaces_the_handler_instead_of_stacking(
    router_logger: logging.Logger, tmp_path: Path
) -> None:
    mine = logging.NullHandler()
    router_logger.addHandler(mine)
    first = router_logging.configure(file=tmp_path / "first.log")
    stream = io.StringIO()
    second = router_logging.configure(stream=stream)
    ours = [h for h in router_logger.handlers if h.get_name() == router_logging.HANDLER_NAME]
    assert ours == [second] and first not in router_logger.handlers
    assert mine in router_logger.handlers
    assert isinstance(first, logging.FileHandler) and first.stream is None  # closed
    EVENTS.completed(fallback_record())
    assert len(stream.getvalue().splitlines()) == 1


def test_configure_sets_the_router_logger_level_and_leaves_propagation_alone(
    router_logger: logging.Logger,
) -> None:
    router_logger.propagate = False
    stream = io.StringIO()
    router_logging.configure(stream=stream, level="warning")
    assert router_logger.level == logging.WARNING and router_logger.propagate is False
    run(EVENTS)
    assert [line["event"] for line in lines(stream)] == [
        "route.attempt",
        "budget.warning",
        "route.failed",
    ]
    router_logging.configure(stream=stream, level=logging.DEBUG)
    assert router_logger.level == logging.DEBUG


def test_configure_touches_neither_the_root_logger_nor_structlog(router_logger: logging.Logger) -> None:
    import structlog

    root = logging.getLogger()
    before = (root.level, list(root.handlers), structlog.get_config())
    router_logging.configure(stream=io.StringIO(), level="DEBUG")
    assert (root.level, list(root.handlers), structlog.get_config()) == before


def test_an_unknown_level_is_refused_before_anything_is_attached(router_logger: logging.Logger) -> None:
    handlers = list(router_logger.handlers)
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        router_logging.configure(stream=io.StringIO(), level="LOUD")
    assert router_logger.handlers == handlers


def test_a_stream_and_a_file_together_are_refused(router_logger: logging.Logger, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        router_logging.configure(stream=io.StringIO(), file=tmp_path / "x.log")


def test_a_file_is_appended_to(router_logger: logging.Logger, tmp_path: Path) -> None:
    path = tmp_path / "router.log"
    path.write_text('{"earlier": true}\n')
    router_logging.configure(file=path)
    EVENTS.completed(fallback_record())
    earlier, line = path.read_text().splitlines()
    assert json.loads(earlier) == {"earlier": True}
    assert json.loads(line)["event"] == "route.completed"


def test_a_policy_logging_section_configures_format_level_and_file(
    router_logger: logging.Logger, tmp_path: Path
) -> None:
    path = tmp_path / "events.log"
    spec = LoggingSpec.model_validate({"level": "WARNING", "json": False, "file": str(path)})
    router_logging.configure_from_spec(spec)
    assert router_logger.level == logging.WARNING
    run(Events(policy_hash="x", log_content=True))
    written = path.read_text().splitlines()
    assert len(written) == 3
    for line, event in zip(written, ["route.attempt", "budget.warning", "route.failed"], strict=True):
        assert f"] {event} " in line and not line.startswith("{")


def test_plain_logging_calls_on_router_loggers_are_rendered_too(router_logger: logging.Logger) -> None:
    stream = io.StringIO()
    router_logging.configure(stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("router.ledger").warning("ledger %s is slow", "sqlite", exc_info=True)
    (line,) = lines(stream)
    assert {k: line[k] for k in ("level", "logger", "event")} == {
        "level": "warning",
        "logger": "router.ledger",
        "event": "ledger sqlite is slow",
    }
    assert "RuntimeError: boom" in line["exception"]


def test_every_handler_sees_the_event_whichever_formats_it_first(router_logger: logging.Logger) -> None:
    plain = io.StringIO()
    handler = logging.StreamHandler(plain)
    router_logger.addHandler(handler)
    structured = io.StringIO()
    router_logging.configure(stream=structured)
    plain_again = io.StringIO()
    router_logger.addHandler(logging.StreamHandler(plain_again))
    EVENTS.completed(fallback_record())
    assert lines(structured)[0]["event"] == "route.completed"
    assert plain.getvalue() == plain_again.getvalue()
    assert plain.getvalue().startswith("route.completed request_id=req_fallback ")


def test_the_formatter_can_be_used_on_a_handler_of_ones_own(router_logger: logging.Logger) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(router_logging.formatter(json=True))
    router_logger.addHandler(handler)
    router_logger.setLevel(logging.INFO)
    EVENTS.completed(fallback_record())
    assert lines(stream)[0]["model"] == "gpt-4o"


def test_values_json_cannot_encode_are_written_as_their_repr(router_logger: logging.Logger) -> None:
    class Message:
        def __repr__(self) -> str:
            return "Message(role='user')"

    stream = io.StringIO()
    router_logging.configure(stream=stream)
    Events(policy_hash="x", log_content=True).decided(fallback_record(), messages=[Message()])
    assert lines(stream)[0]["messages"] == ["Message(role='user')"]


def test_importing_router_logging_does_not_import_structlog() -> None:
    # structlog costs tens of milliseconds to import; it is loaded by the first configure().
    code = (
        "import sys, router; before = 'structlog' in sys.modules; import router.logging; "
        "assert before or 'structlog' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_json_timestamps_are_right_across_second_boundaries(router_logger: logging.Logger) -> None:
    # The formatter makes a second's date part once and reuses it: each line must still carry its own
    # record's time, in whatever order seconds come (a clock that steps back included).
    stream = io.StringIO()
    handler = router_logging.configure(json=True, stream=stream)
    created = [1780315199.999999, 1780315200.000001, 1780315200.5, 1780315199.25, 1780315261.0]
    remaining = iter(created)

    class Stamp(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.created = next(remaining)
            return True

    handler.addFilter(Stamp())
    for _ in created:
        EVENTS.completed(fallback_record())
    stamps = [line["timestamp"] for line in lines(stream)]
    expected = [
        datetime.fromtimestamp(round(c * 1_000_000) / 1_000_000, UTC).isoformat(timespec="microseconds")
        for c in created
    ]
    assert stamps == [e.replace("+00:00", "Z") for e in expected]


def test_json_lines_of_events_and_of_plain_records_share_one_header(router_logger: logging.Logger) -> None:
    # Events take a shorter way than other records through the formatter; both lines start the same.
    stream = io.StringIO()
    router_logging.configure(json=True, stream=stream, log_content=False)
    Events(policy_hash="x", log_content=True).completed(fallback_record(), content=ANSWER)
    router_logger.info("plain")
    event, plain = lines(stream)
    assert list(event)[:4] == list(plain)[:4] == ["timestamp", "level", "logger", "event"]
    assert (event["level"], event["logger"]) == (plain["level"], plain["logger"]) == ("info", "router")
    assert "content" not in event
    assert ANSWER not in stream.getvalue()


def _on_disk(path: Path) -> list[str]:
    return [json.loads(line)["event"] for line in path.read_text().splitlines()]


def test_a_log_file_written_inside_an_event_loop_is_flushed_once_the_loop_turn_ends(
    router_logger: logging.Logger, tmp_path: Path
) -> None:
    # One flush per loop turn, not per line: the lines are on disk before the loop does anything else.
    path = tmp_path / "router.log"
    router_logging.configure(file=path)
    seen: list[list[str]] = []

    async def requests() -> None:
        record = fallback_record()
        EVENTS.decided(record)
        EVENTS.completed(record)
        seen.append(_on_disk(path))
        await asyncio.sleep(0)
        seen.append(_on_disk(path))

    asyncio.run(requests())
    assert seen == [[], ["route.decided", "route.completed"]]


def test_a_log_file_written_outside_an_event_loop_has_each_line_on_disk_at_once(
    router_logger: logging.Logger, tmp_path: Path
) -> None:
    path = tmp_path / "router.log"
    router_logging.configure(file=path)
    EVENTS.completed(fallback_record())
    assert _on_disk(path) == ["route.completed"]


def test_lines_left_by_a_loop_closed_before_its_flush_are_written_by_the_next_loop(
    router_logger: logging.Logger, tmp_path: Path
) -> None:
    path = tmp_path / "router.log"
    router_logging.configure(file=path)

    async def log_and_stop() -> None:
        EVENTS.completed(fallback_record())
        asyncio.get_running_loop().stop()  # the turn ends the loop: the flush it scheduled never runs

    loop = asyncio.new_event_loop()
    loop.run_until_complete(log_and_stop())
    loop.close()
    stranded = _on_disk(path)

    async def log_again() -> None:
        EVENTS.completed(fallback_record())
        await asyncio.sleep(0)

    asyncio.run(log_again())
    assert stranded == []
    assert _on_disk(path) == ["route.completed", "route.completed"]


def test_lines_not_flushed_when_the_process_exits_are_written_at_exit(tmp_path: Path) -> None:
    path = tmp_path / "router.log"
    code = (
        "import asyncio, router.logging\n"
        "from router._events import Events\n"
        "from tests.router.event_helpers import fallback_record\n"
        f"router.logging.configure(file={str(path)!r})\n"
        "async def main():\n"
        "    Events(policy_hash='0123456789ab').completed(fallback_record())\n"
        "    asyncio.get_running_loop().stop()\n"
        "loop = asyncio.new_event_loop()\n"
        "loop.run_until_complete(main())\n"
        "assert open(" + repr(str(path)) + ").read() == ''\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
    assert _on_disk(path) == ["route.completed"]


def _without_timestamps(path: Path) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in json.loads(line).items() if k != "timestamp"}
        for line in path.read_text().splitlines()
    ]


def test_a_json_log_file_gets_the_same_lines_with_or_without_a_log_record(
    router_logger: logging.Logger, tmp_path: Path
) -> None:
    # Alone on the logger, the file handler writes each event's line without a LogRecord; a filter
    # (which must see records) sends the same events the stdlib's way: the lines do not change.
    router_logger.propagate = False  # pytest's own handlers on the root would see the records
    direct, via_records = tmp_path / "direct.log", tmp_path / "records.log"
    handler = router_logging.configure(file=direct)
    assert _sink(logging.INFO) is handler
    run(EVENTS)
    handler = router_logging.configure(file=via_records)
    router_logger.addFilter(keep := lambda record: True)
    try:
        assert _sink(logging.INFO) is None
        run(EVENTS)
    finally:
        router_logger.removeFilter(keep)
    assert _without_timestamps(direct) == _without_timestamps(via_records)
    assert len(_without_timestamps(direct)) == 10  # every level: info, warning (attempt, budget), error


def test_events_take_the_stdlib_way_whenever_something_else_could_see_the_record(
    router_logger: logging.Logger, tmp_path: Path
) -> None:
    router_logger.propagate = False
    handler = router_logging.configure(file=tmp_path / "router.log")
    assert _sink(logging.INFO) is handler
    assert _sink(logging.DEBUG) is None  # below the handler's level: the stdlib drops it
    handler.addFilter(lambda record: True)
    assert _sink(logging.INFO) is None
    handler.filters.clear()
    router_logger.propagate = True
    other = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(other)  # propagated to the root's handler too
    try:
        assert _sink(logging.INFO) is None
    finally:
        logging.getLogger().removeHandler(other)
    router_logger.propagate = False
    assert _sink(logging.INFO) is handler
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: factory(*args, **kwargs))  # an app's own records
    try:
        assert _sink(logging.INFO) is None
    finally:
        logging.setLogRecordFactory(factory)
    handler.setFormatter(router_logging.formatter(json=False))  # console lines: rendered from a record
    assert _sink(logging.INFO) is None


def test_a_log_file_that_cannot_be_written_reports_the_event_as_logging_does(
    router_logger: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    router_logger.propagate = False
    handler = router_logging.configure(file=tmp_path / "router.log")
    assert _sink(logging.INFO) is handler
    broken = io.StringIO()
    broken.close()
    handler.stream = broken  # type: ignore[assignment]
    EVENTS.completed(fallback_record())  # no exception reaches the caller
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err
    assert "route.completed" in err
    handler.stream = None  # type: ignore[assignment]


@pytest.mark.parametrize("log_content", [True, False])
def test_each_json_line_is_the_text_the_processor_chain_renders_for_it(
    router_logger: logging.Logger, log_content: bool
) -> None:
    # The JSON formatter writes an event's line itself (no processor chain, the encoder without its
    # cycle check when no content is in it); the chain it replaces must render the very same text.
    lines = _formatted_both_ways(
        router_logger, lambda: run(Events(policy_hash="0123456789ab", log_content=log_content)), log_content
    )
    assert len(lines) == 10 and any('"content":' in line for line in lines) is log_content


def _formatted_both_ways(router_logger: logging.Logger, emit: Any, log_content: bool = False) -> list[str]:
    """Each record ``emit`` logs, as the JSON formatter writes it; asserted equal to the chain's text."""
    from router._formatting import _Formatter

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    router_logger.setLevel(logging.INFO)
    router_logger.addHandler(keep := Keep())
    try:
        emit()
    finally:
        router_logger.removeHandler(keep)
    formatter = router_logging.formatter(json=True, log_content=log_content)
    written = [formatter.format(record) for record in records]
    assert written == [_Formatter.format(formatter, record) for record in records]
    return written


def test_floats_are_written_in_their_shortest_form_on_both_paths(router_logger: logging.Logger) -> None:
    # orjson writes the line when every value is plain JSON: the same values, 9.6e-6 for 9.6e-06.
    record = fallback_record(cost_usd=9.6e-06, latency_ms=1e-05)
    (line,) = _formatted_both_ways(router_logger, lambda: EVENTS.completed(record))
    assert '"cost_usd":9.6e-6,' in line and '"latency_ms":0.00001,' in line
    assert json.loads(line)["cost_usd"] == 9.6e-06


def test_values_orjson_would_change_or_refuse_are_written_as_the_stdlib_writes_them(
    router_logger: logging.Logger,
) -> None:
    # NaN and infinities (orjson would write null), an int beyond 64 bits (orjson refuses it):
    # the whole line takes the stdlib's encoder, as every line did before, on both paths.
    usage = Usage(prompt_tokens=2**70, completion_tokens=1, cached_tokens=0, reasoning_tokens=0)
    nan = fallback_record(cost_usd=math.nan, latency_ms=math.inf)
    big = fallback_record(usage=usage, cost_usd=9.6e-06)
    nan_line, big_line = _formatted_both_ways(
        router_logger, lambda: (EVENTS.completed(nan), EVENTS.completed(big))
    )
    assert '"cost_usd":NaN,' in nan_line and '"latency_ms":Infinity,' in nan_line
    assert f'"prompt_tokens":{2**70},' in big_line and '"cost_usd":9.6e-06,' in big_line


def test_lines_with_content_are_written_by_the_stdlib_encoder(router_logger: logging.Logger) -> None:
    # The caller's messages and the answer are encoded as before (the stdlib's encoder, non-ASCII as
    # is), so the whole line is: its floats keep the stdlib's text.
    stream = io.StringIO()
    router_logging.configure(stream=stream)
    logged = Events(policy_hash="x", log_content=True)
    logged.decided(fallback_record(cost_usd=9.6e-06), messages=[{"role": "user", "content": "é中"}])
    logged.completed(fallback_record(cost_usd=9.6e-06), content="é")
    decided, completed = stream.getvalue().splitlines()
    assert '"messages":[{"role":"user","content":"é中"}]' in decided
    assert '"cost_usd":9.6e-06,' in completed and completed.endswith('"content":"é"}')
