#!/usr/bin/env python3
"""Responses API clients against Rosetta: the OpenAI Python SDK and the OpenAI Agents SDK.

Starts one fake upstream per shipped mapping and one `rosetta serve` in front of them (with a
ledger in a temporary SQLite file, so responses are stored), then drives `/NAME/v1/responses`
on every mapping with the clients as their users write them:

- `client.responses.create` (text, tool call, `function_call_output` round trip by replaying
  `response.output`, the same round trip chained with `previous_response_id`, two calls at once);
- `client.responses.stream(...)` + `get_final_response()` (the SDK's stream helper, which
  enforces the invariants of shared/reference/responses-api.md section 4.6), whose final
  response must equal the non-streamed one for the same input (output text, reasoning as text
  or as a summary, usage); upstream errors as HTTP errors, or after a 200 as `error` then
  `response.failed`;
- `client.responses.parse(text_format=...)` on the mappings that translate a JSON schema (the
  fakes answer plain text, never JSON: the check is that the schema reaches the upstream in
  the mapping's form and that the SDK validates the answer against the pydantic model);
- `responses.retrieve`, `responses.input_items.list` (order, pagination), `responses.delete`,
  `previous_response_id` (the earlier turn reaches the upstream, its instructions do not; a
  deleted or `store: false` response cannot be chained);
- the OpenAI Agents SDK (`Agent` + `@function_tool` on `OpenAIResponsesModel`, `Runner.run`,
  `Runner.run_streamed`, and `auto_previous_response_id`): the tool runs and the final output
  is the fake's `Tool said: <tool result>`.

Rows, fakes and processes come from conformance.py (same folder). Prints `PASS name` /
`FAIL name: why` per check and a final `N passed, M failed`; exits non-zero on any failure.
Environment: $ROSETTA_BIN, $FAKE_UPSTREAM_BIN, $ROSETTA_MAPPINGS as for conformance.py;
RESPONSES_ONLY=anthropic,ollama runs some rows.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conformance as c  # noqa: E402  (the rows, the process handling and the check helpers)
from conformance import HTTP_TIMEOUT, Failure, Row, eq, expect, short  # noqa: E402

import openai  # noqa: E402
import pydantic  # noqa: E402
from openai import AsyncOpenAI, OpenAI  # noqa: E402

try:  # openai >= 3 is built on httpx2
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled  # noqa: E402

# The Agents SDK would export traces to OpenAI's servers: never from a test.
set_tracing_disabled(True)

# Responses tools are flat (no nested `function`).
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


TIME = {
    "type": "function",
    "name": "get_time",
    "description": "Current time in a time zone",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"],
                   "additionalProperties": False},
    "strict": True,
}


class City(pydantic.BaseModel):
    """The structured answer `responses.parse` asks for."""

    name: str
    population: int


# What each mapping makes of `text.format` json_schema upstream (the schema the SDK sent).
# anthropic.yaml has no response_format rule, so `parse` is not run there.
def schema_ollama(up: dict, fmt: dict) -> None:
    eq(up.get("format"), fmt["schema"], "upstream format")


def schema_gemini(up: dict, fmt: dict) -> None:
    g = up.get("generationConfig") or {}
    eq(g.get("responseMimeType"), "application/json", "upstream generationConfig.responseMimeType")
    eq(g.get("responseJsonSchema"), fmt["schema"], "upstream generationConfig.responseJsonSchema")


def schema_cohere(up: dict, fmt: dict) -> None:
    eq(up.get("response_format"), {"type": "json_object", "json_schema": fmt["schema"]}, "upstream response_format")


def schema_tgi(up: dict, fmt: dict) -> None:
    eq((up.get("parameters") or {}).get("grammar"), {"type": "json", "value": fmt["schema"]},
       "upstream parameters.grammar")


def schema_openai(up: dict, fmt: dict) -> None:
    rf = up.get("response_format") or {}
    eq(rf.get("type"), "json_schema", "upstream response_format.type")
    js = rf.get("json_schema") or {}
    eq((js.get("name"), js.get("schema"), js.get("strict")), (fmt["name"], fmt["schema"], fmt.get("strict")),
       "upstream response_format.json_schema name, schema, strict")


SCHEMA_UPSTREAM: dict[str, Callable[[dict, dict], None]] = {
    "ollama": schema_ollama,
    "gemini": schema_gemini,
    "cohere": schema_cohere,
    "tgi": schema_tgi,
    "azure": schema_openai,
    "openai-compatible": schema_openai,
}


def usage_tuple(u: Any) -> tuple:
    expect(u is not None, "usage is null")
    t = (u.input_tokens, u.output_tokens, u.total_tokens)
    expect(all(isinstance(x, int) and not isinstance(x, bool) for x in t), f"usage not integers: {u!r}")
    eq(u.total_tokens, u.input_tokens + u.output_tokens, "usage.total_tokens")
    expect(u.input_tokens_details is not None and u.output_tokens_details is not None,
           f"usage without input_tokens_details / output_tokens_details: {u!r}")
    return t + (u.input_tokens_details.cached_tokens, u.output_tokens_details.reasoning_tokens)


def reasoning_text(item: Any) -> str:
    """The text of a reasoning item: its reasoning_text content, else its summary."""
    text = "".join(p.text for p in (item.content or []))
    return text or "".join(s.text for s in (item.summary or []))


def types(resp: Any) -> list[str]:
    return [o.type for o in resp.output]


def calls_of(resp: Any) -> list[Any]:
    return [o for o in resp.output if o.type == "function_call"]


class Recorder:
    """The JSON bodies an SDK client sent (an httpx request hook)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def _keep(self, request: Any) -> None:
        try:
            self.bodies.append(json.loads(request.content or b"null") or {})
        except ValueError:
            self.bodies.append({})

    def hook(self, request: Any) -> None:
        self._keep(request)

    async def ahook(self, request: Any) -> None:
        self._keep(request)


class Suite:
    def __init__(self, row: Row, proxy: str, fake: str, http: httpx.Client):
        self.row, self.proxy, self.fake, self.http = row, proxy, fake, http
        self.model = row.model
        self.base = f"{proxy}/{row.name}/v1"
        self.sent = Recorder()
        self.client = OpenAI(base_url=self.base, api_key="unused", max_retries=0, timeout=HTTP_TIMEOUT,
                             http_client=openai.DefaultHttpxClient(event_hooks={"request": [self.sent.hook]}))

    # -- helpers --

    def clear_upstream(self) -> None:
        r = self.http.delete(f"{self.fake}/__requests")
        expect(r.status_code < 300, f"cannot clear the fake's requests: {r.status_code}")

    def upstream_bodies(self) -> list[dict]:
        r = self.http.get(f"{self.fake}/__requests")
        return [q["body"] for q in r.json() if q.get("method") == "POST"]

    def upstream_body(self) -> dict:
        bodies = self.upstream_bodies()
        expect(bodies, "the fake upstream recorded no request")
        return bodies[-1]

    def create(self, **kw: Any) -> Any:
        r = self.client.responses.create(model=self.model, **kw)
        eq(r.object, "response", "object")
        expect(isinstance(r.id, str) and r.id, f"id {r.id!r}")
        return r

    def stream_final(self, **kw: Any) -> tuple[Any, list[Any]]:
        """`responses.stream(...)`: the final response and every event."""
        events = []
        with self.client.responses.stream(model=self.model, **kw) as stream:
            for ev in stream:
                events.append(ev)
            final = stream.get_final_response()
        expect(events and events[0].type == "response.created", f"first event {events[:1]!r}")
        eq(events[-1].type, "response.completed", "last event")
        return final, events

    # -- checks --

    def checks(self) -> list[tuple[str, Callable[[], None]]]:
        row = self.row
        out = [
            ("create_text", self.create_text),
            ("stream_equals_create", self.stream_equals_create),
            ("unified_surface", self.unified_surface),
            ("max_output_tokens_incomplete", self.incomplete),
            ("upstream_error_status", self.upstream_error),
        ]
        if row.think:
            out.append(("reasoning_stream_equals_create", self.reasoning))
        if row.tools:
            out += [
                ("tool_call", self.tool_call),
                ("tool_call_stream", self.tool_call_stream),
                ("tool_round_trip_replay", self.tool_round_trip_replay),
                ("tool_round_trip_replay_stream", self.tool_round_trip_replay_stream),
                ("tool_round_trip_previous_response_id", self.tool_round_trip_chained),
                ("two_tools_stream_then_chained", self.two_tools),
            ]
        out += [
            ("retrieve_input_items_delete", self.retrieve_items_delete),
            ("store_false_is_not_kept", self.store_false),
            ("previous_response_id", self.previous_response_id),
        ]
        if row.name in SCHEMA_UPSTREAM:
            out.append(("parse_text_format", self.parse_text_format))
        if row.tools:
            out += [
                ("agents_runner", lambda: asyncio.run(self.agents(streamed=False, chained=False))),
                ("agents_runner_streamed", lambda: asyncio.run(self.agents(streamed=True, chained=False))),
                ("agents_auto_previous_response_id", lambda: asyncio.run(self.agents(streamed=False, chained=True))),
            ]
        return out

    def create_text(self) -> None:
        r = self.create(input="hello responses")
        eq(r.status, "completed", "status")
        eq(r.output_text, "Hello! You said: hello responses", "output_text")
        eq(types(r), ["message"], "output item types")
        msg = r.output[0]
        eq((msg.role, msg.status), ("assistant", "completed"), "message role and status")
        eq([p.type for p in msg.content], ["output_text"], "message content types")
        usage_tuple(r.usage)
        expect(r.usage.output_tokens > 0, f"output_tokens {r.usage!r}")

    def stream_equals_create(self) -> None:
        text = "stream me please"
        whole = self.create(input=text)
        final, events = self.stream_final(input=text)
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        eq(deltas, whole.output_text, "streamed deltas vs non-stream output_text")
        eq(final.output_text, whole.output_text, "final output_text vs non-stream")
        eq(final.output_text, f"Hello! You said: {text}", "final output_text")
        eq(types(final), types(whole), "output item types")
        eq(usage_tuple(final.usage), usage_tuple(whole.usage), "usage (input, output, total, cached, reasoning)")
        eq(final.status, "completed", "final status")
        # The streamed response is stored like the other.
        got = self.client.responses.retrieve(final.id)
        eq((got.id, got.output_text), (final.id, final.output_text), "retrieve(streamed id)")

    def unified_surface(self) -> None:
        """`/v1/responses` with model NAME/model reaches the same mapping; ids work across surfaces."""
        uni = OpenAI(base_url=f"{self.proxy}/v1", api_key="unused", max_retries=0, timeout=HTTP_TIMEOUT)
        r = uni.responses.create(model=f"{self.row.name}/{self.model}", input="unified hello")
        eq(r.output_text, "Hello! You said: unified hello", "output_text")
        eq(self.client.responses.retrieve(r.id).output_text, r.output_text, "retrieve on /NAME/v1")
        eq(uni.responses.retrieve(r.id).output_text, r.output_text, "retrieve on /v1")

    def incomplete(self) -> None:
        r = self.create(input="MAX TOKENS now", max_output_tokens=16)
        eq(r.status, "incomplete", "status")
        expect(r.incomplete_details is not None, "incomplete_details is null")
        eq(r.incomplete_details.reason, "max_output_tokens", "incomplete_details.reason")
        # The stream helper iterates an incomplete stream; get_final_response() then refuses it.
        seen = []
        with self.client.responses.stream(model=self.model, input="MAX TOKENS now", max_output_tokens=16) as s:
            for ev in s:
                seen.append(ev.type)
        eq(seen[-1] if seen else None, "response.incomplete", "last stream event")
        expect("response.completed" not in seen, f"response.completed in an incomplete stream: {seen}")

    def upstream_error(self) -> None:
        """The row's first error trigger: an HTTP error for create; for a stream, the same HTTP
        error, or (when the upstream reports it after its 200, as TGI's /generate_stream does)
        an `error` event then `response.failed`, which get_final_response() refuses."""
        case = self.row.errors[0]
        for how in ("create", "stream"):
            seen: list[Any] = []
            try:
                if how == "create":
                    self.client.responses.create(model=self.model, input=case.trigger)
                else:
                    with self.client.responses.stream(model=self.model, input=case.trigger) as s:
                        for ev in s:
                            seen.append(ev)
                        s.get_final_response()
            except openai.APIStatusError as e:
                expect(isinstance(e, case.sdk), f"{how}: SDK raised {type(e).__name__} ({e.status_code}), "
                                                f"wanted {case.sdk.__name__}")
                eq(e.status_code, case.status, f"{how}: status")
                continue
            except RuntimeError as e:
                kinds = [ev.type for ev in seen]
                expect(how == "stream" and seen, f"{how}: {e}")
                eq(kinds[-2:], ["error", "response.failed"], f"stream after its 200: last events ({e})")
                expect("response.completed" not in kinds, f"response.completed in a failed stream: {kinds}")
                failed = seen[-1].response
                eq(failed.status, "failed", "response.failed status")
                expect(failed.error is not None and failed.error.message, f"response.failed error {failed.error!r}")
                continue
            raise Failure(f"{how}: no error for {case.trigger!r}")

    def reasoning(self) -> None:
        text = "THINK about it"
        whole = self.create(input=text)
        eq(types(whole), ["reasoning", "message"], "output item types")
        eq(whole.output_text, f"Hello! You said: {text}", "output_text")
        thought = reasoning_text(whole.output[0])
        expect(thought, f"empty reasoning item: {whole.output[0]!r}")
        final, events = self.stream_final(input=text)
        eq(types(final), types(whole), "streamed output item types")
        eq(reasoning_text(final.output[0]), thought, "streamed reasoning vs non-stream")
        eq(final.output_text, whole.output_text, "streamed output_text")
        eq(usage_tuple(final.usage), usage_tuple(whole.usage), "usage")
        # Asked for a summary (as Codex does), the reasoning comes as summary text instead.
        whole = self.create(input=text, reasoning={"summary": "auto"})
        final, events = self.stream_final(input=text, reasoning={"summary": "auto"})
        for r, what in ((whole, "create"), (final, "stream")):
            eq(types(r), ["reasoning", "message"], f"{what} with a summary: output item types")
            eq("".join(x.text for x in r.output[0].summary), thought, f"{what}: summary text")
        deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
        eq(deltas, thought, "reasoning_summary_text.delta events")

    def _one_call(self, resp: Any) -> Any:
        calls = calls_of(resp)
        eq([cl.name for cl in calls], ["get_weather"], f"function calls in {types(resp)}")
        call = calls[0]
        expect(isinstance(call.call_id, str) and call.call_id, f"call_id {call.call_id!r}")
        eq(json.loads(call.arguments), {"city": "Paris"}, "arguments")
        eq(resp.status, "completed", "status")
        return call

    def tool_call(self) -> None:
        self._one_call(self.create(input="What is the weather?", tools=[WEATHER]))

    def tool_call_stream(self) -> None:
        final, events = self.stream_final(input="What is the weather?", tools=[WEATHER])
        call = self._one_call(final)
        # A strict tool: the helper parses the final arguments.
        eq(call.parsed_arguments, {"city": "Paris"}, "parsed_arguments")
        done = [e for e in events if e.type == "response.function_call_arguments.done"]
        eq([json.loads(e.arguments) for e in done], [{"city": "Paris"}], "function_call_arguments.done events")

    def _replayed(self, stream: bool) -> None:
        user = {"role": "user", "content": "What is the weather?"}
        first = self.create(input=[user], tools=[WEATHER], store=False)
        call = self._one_call(first)
        # What SDK users write: the previous output items as they came, then the result.
        items = [user, *first.output, {"type": "function_call_output", "call_id": call.call_id,
                                       "output": "18C and sunny"}]
        if stream:
            second, _ = self.stream_final(input=items, tools=[WEATHER], store=False)
        else:
            second = self.create(input=items, tools=[WEATHER], store=False)
        eq(second.output_text, self.row.tool_said("18C and sunny"), "answer after the tool result")
        eq(calls_of(second), [], "function calls in the answer")

    def tool_round_trip_replay(self) -> None:
        self._replayed(stream=False)

    def tool_round_trip_replay_stream(self) -> None:
        self._replayed(stream=True)

    def tool_round_trip_chained(self) -> None:
        first = self.create(input="What is the weather?", tools=[WEATHER])
        call = self._one_call(first)
        second = self.create(previous_response_id=first.id, tools=[WEATHER],
                             input=[{"type": "function_call_output", "call_id": call.call_id,
                                     "output": "rainy, 12C"}])
        eq(second.previous_response_id, first.id, "previous_response_id echoed")
        eq(second.output_text, self.row.tool_said("rainy, 12C"), "answer after the tool result")

    def two_tools(self) -> None:
        """Two calls in one streamed response (distinct call_ids, both done), then both outputs
        chained with previous_response_id."""
        final, events = self.stream_final(input="TWO TOOLS please", tools=[WEATHER, TIME])
        calls = calls_of(final)
        eq([(cl.name, json.loads(cl.arguments)) for cl in calls],
           [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "Paris"})], "calls (name, arguments)")
        eq(len({cl.call_id for cl in calls}), 2, "distinct call_ids")
        outputs = {"get_weather": "sunny", "get_time": "noon"}
        second = self.create(previous_response_id=final.id, tools=[WEATHER, TIME],
                             input=[{"type": "function_call_output", "call_id": cl.call_id,
                                     "output": outputs[cl.name]} for cl in calls])
        # The fakes answer with the first tool result (Ollama's with the last tool message).
        expect(second.output_text in {self.row.tool_said(o) for o in outputs.values()},
               f"answer after both results: {second.output_text!r}")

    def retrieve_items_delete(self) -> None:
        r = self.create(input=[{"role": "user", "content": "First"},
                               {"role": "user", "content": [{"type": "input_text", "text": "Second"}]}])
        got = self.client.responses.retrieve(r.id)
        eq((got.id, got.status, got.output_text, types(got)), (r.id, r.status, r.output_text, types(r)),
           "retrieved (id, status, output_text, item types)")
        eq(usage_tuple(got.usage), usage_tuple(r.usage), "retrieved usage")

        def texts(page: Any) -> list[str]:
            out = []
            for item in page:
                eq(item.type, "message", "input item type")
                expect(isinstance(item.id, str) and item.id, f"input item without id: {item!r}")
                out.append("".join(getattr(p, "text", "") for p in item.content))
            return out

        eq(texts(self.client.responses.input_items.list(r.id)), ["Second", "First"], "input_items (default desc)")
        eq(texts(self.client.responses.input_items.list(r.id, order="asc")), ["First", "Second"],
           "input_items order=asc")
        # limit=1: the SDK follows `after=<last_id>` while has_more is true.
        page = self.client.responses.input_items.list(r.id, order="asc", limit=1)
        eq((len(page.data), page.has_more), (1, True), "first page of limit=1 (items, has_more)")
        eq(texts(page), ["First", "Second"], "input_items limit=1, all pages")
        self.client.responses.delete(r.id)
        for what, fn in (("retrieve", lambda: self.client.responses.retrieve(r.id)),
                         ("input_items.list", lambda: self.client.responses.input_items.list(r.id)),
                         ("delete", lambda: self.client.responses.delete(r.id))):
            try:
                fn()
            except openai.NotFoundError:
                continue
            raise Failure(f"{what} after delete: no NotFoundError")
        try:
            self.client.responses.create(model=self.model, input="next", previous_response_id=r.id)
        except openai.BadRequestError as e:
            eq((e.code, e.param), ("previous_response_not_found", "previous_response_id"),
               "previous_response_id of a deleted response: error code and param")
        else:
            raise Failure("previous_response_id of a deleted response: no BadRequestError")

    def store_false(self) -> None:
        r = self.create(input="do not keep this", store=False)
        eq(r.output_text, "Hello! You said: do not keep this", "output_text")
        try:
            self.client.responses.retrieve(r.id)
        except openai.NotFoundError:
            pass
        else:
            raise Failure("retrieve of a store=false response: no NotFoundError")
        try:
            self.client.responses.create(model=self.model, input="next", previous_response_id=r.id)
        except openai.BadRequestError as e:
            eq((e.code, e.param), ("previous_response_not_found", "previous_response_id"), "error code and param")
        else:
            raise Failure("previous_response_id of a store=false response: no BadRequestError")

    def previous_response_id(self) -> None:
        r1 = self.create(input="My name is Ada", instructions="INSTRUCTIONS-ONE apply to the first turn")
        eq(r1.output_text, "Hello! You said: My name is Ada", "first output_text")
        self.clear_upstream()
        r2 = self.create(input="What is my name?", previous_response_id=r1.id)
        eq(r2.output_text, "Hello! You said: What is my name?", "second output_text")
        eq(r2.previous_response_id, r1.id, "previous_response_id echoed")
        sent = json.dumps(self.upstream_body())
        where = [sent.find(t) for t in ("My name is Ada", "Hello! You said: My name is Ada", "What is my name?")]
        expect(all(w >= 0 for w in where) and where == sorted(where),
               f"upstream request does not hold the earlier turn, then the new one: {short(sent, 1500)}")
        expect("INSTRUCTIONS-ONE" not in sent,
               f"the first response's instructions were carried over (they must not be): {short(sent, 1500)}")
        # A third turn on the second sees both earlier turns.
        self.clear_upstream()
        r3 = self.create(input="And again?", previous_response_id=r2.id)
        eq(r3.output_text, "Hello! You said: And again?", "third output_text")
        sent = json.dumps(self.upstream_body())
        where = [sent.find(t) for t in ("My name is Ada", "What is my name?", "And again?")]
        expect(all(w >= 0 for w in where) and where == sorted(where),
               f"third upstream request misses an earlier turn: {short(sent, 1500)}")

    def parse_text_format(self) -> None:
        self.clear_upstream()
        self.sent.bodies.clear()
        try:
            parsed = self.client.responses.parse(model=self.model, input="A city as JSON, please",
                                                 text_format=City)
        except pydantic.ValidationError as e:
            # The fakes answer `Hello! You said: ...`, not JSON: the SDK must refuse it against City.
            bad = [err.get("input") for err in e.errors()]
            expect(any(isinstance(b, str) and b.startswith("Hello! You said: A city as JSON") for b in bad),
                   f"ValidationError not about the fake's answer: {e}")
        else:
            raise Failure(f"parse accepted a non-JSON answer: {parsed.output_text!r}")
        fmt = ((self.sent.bodies[-1] if self.sent.bodies else {}).get("text") or {}).get("format") or {}
        eq((fmt.get("type"), fmt.get("name")), ("json_schema", "City"), "text.format the SDK sent")
        expect(isinstance(fmt.get("schema"), dict) and "population" in json.dumps(fmt["schema"]),
               f"text.format.schema {short(fmt)}")
        SCHEMA_UPSTREAM[self.row.name](self.upstream_body(), fmt)

    async def agents(self, *, streamed: bool, chained: bool) -> None:
        ran: list[str] = []

        @function_tool
        def get_weather(city: str) -> str:
            """Current weather in a city.

            Args:
                city: The city.
            """
            ran.append(city)
            return f"Sunny in {city}"

        sent = Recorder()
        client = AsyncOpenAI(base_url=self.base, api_key="unused", max_retries=0, timeout=HTTP_TIMEOUT,
                             http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [sent.ahook]}))
        try:
            agent = Agent(name="Weather", instructions="Answer with the weather tool.", tools=[get_weather],
                          model=OpenAIResponsesModel(model=self.model, openai_client=client))
            if streamed:
                result = Runner.run_streamed(agent, "What is the weather in Paris?", max_turns=4)
                async for _ in result.stream_events():
                    pass
            else:
                result = await Runner.run(agent, "What is the weather in Paris?", max_turns=4,
                                          auto_previous_response_id=chained)
        finally:
            await client.close()
        eq(ran, ["Paris"], "tool runs (city arguments)")
        eq(result.final_output, self.row.tool_said("Sunny in Paris"), "final_output")
        posts = [b for b in sent.bodies if b.get("input") is not None]
        eq(len(posts), 2, "requests to /responses")
        eq(bool(posts[0].get("stream")), streamed, "first request streams")
        if chained:
            expect(posts[1].get("previous_response_id"), f"second request not chained: {short(posts[1])}")
            eq([i.get("type") for i in posts[1]["input"]], ["function_call_output"], "second request input items")


def main() -> int:
    for b in (c.ROSETTA_BIN, c.FAKE_BIN):
        if not os.access(b, os.X_OK):
            print(f"FAIL setup: binary {b} not found (build with cargo build --release --workspace)")
            print("0 passed, 1 failed")
            return 1
    atexit.register(c.stop_all)
    signal.signal(signal.SIGTERM, c.on_signal)
    signal.signal(signal.SIGINT, c.on_signal)
    only = os.environ.get("RESPONSES_ONLY")
    rows = []
    for row in c.ROWS:
        if only and row.name not in only.split(","):
            continue
        if (Path(c.MAPPINGS) / f"{row.name}.yaml").is_file():
            rows.append(row)
        else:
            print(f"# SKIP {row.name}: {c.MAPPINGS}/{row.name}.yaml does not exist", flush=True)
    for row in rows:
        if row.name not in SCHEMA_UPSTREAM:
            print(f"# {row.name}: no parse_text_format check (its mapping sends no response_format)", flush=True)
        if not row.tools:
            print(f"# {row.name}: no tool or Agents SDK checks (its upstream has no tool calling)", flush=True)
    tmp = tempfile.mkdtemp(prefix="rosetta-responses-")
    atexit.register(shutil.rmtree, tmp, True)
    rosetta = None
    try:
        urls = c.start_fakes(rows)
        env = {k: v for k, v in os.environ.items() if not k.startswith(c.ENV_PREFIXES)}
        env.update({"NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        for row in rows:
            env.update(row.env(urls[row.name]))
        rosetta = c.Proc("rosetta", [c.ROSETTA_BIN, "serve", "--mappings", c.MAPPINGS, "--listen", "127.0.0.1:0",
                                     "--ledger", f"sqlite://{tmp}/ledger.db"], env)
        proxy = rosetta.wait_listening()
        import agents  # for its version

        print(f"# openai {openai.__version__}, openai-agents {agents.__version__}; rosetta at {proxy}",
              flush=True)
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            for row in rows:
                suite = Suite(row, proxy, urls[row.name], http)
                for check, fn in suite.checks():
                    c.run(f"{row.name}/{check}", fn)
    except Exception as e:  # noqa: BLE001
        c.RESULTS.append(("setup", False))
        print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
    finally:
        c.stop_all()
    passed = sum(ok for _, ok in c.RESULTS)
    failed = len(c.RESULTS) - passed
    if failed and rosetta is not None and os.environ.get("CONFORMANCE_LOG", "1") != "0":
        print("# last rosetta log lines:")
        for line in rosetta.lines[-15:]:
            print(f"#   {line}")
    groups: dict[str, list[bool]] = {}
    for name, ok in c.RESULTS:
        groups.setdefault(name.split("/", 1)[0], []).append(ok)
    for group, oks in groups.items():
        print(f"# {group}: {sum(oks)} passed, {len(oks) - sum(oks)} failed", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
