#!/usr/bin/env python3
"""OpenAI-SDK conformance test for Rosetta.

Starts one fake upstream per shipped mapping (anthropic, ollama, azure, openai-compatible,
gemini, cohere, tgi; see ROWS) and one `rosetta serve` in front of them all, then drives every
mapping with the official `openai` Python SDK and with raw HTTP, checking the OpenAI Chat
Completions wire format (shared/reference/wire-formats.md sections 1 and 10).

The suite is table-driven: each row of ROWS names a mapping, its fake, model and environment,
what its fake supports (tools, THINK, STOPSEQ, a content filter), its error triggers with the
statuses Rosetta must answer, and what the fake's requests must look like upstream. A row
whose mapping file does not exist is skipped with a notice.

Prints `PASS name` / `FAIL name: why` per check, figures per mapping and a final
`N passed, M failed`; exits non-zero on any failure. Binaries: $ROSETTA_BIN and
$FAKE_UPSTREAM_BIN (default target/release/...). Mappings: $ROSETTA_MAPPINGS (default
<repo>/mappings).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

try:  # openai >= 3 is built on httpx2; older versions on httpx.
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

import openai
from openai import OpenAI
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

REPO = Path(__file__).resolve().parents[2]
ROSETTA_BIN = os.environ.get("ROSETTA_BIN", str(REPO / "target" / "release" / "rosetta"))
FAKE_BIN = os.environ.get("FAKE_UPSTREAM_BIN", str(REPO / "target" / "release" / "fake-upstream"))
MAPPINGS = os.environ.get("ROSETTA_MAPPINGS", str(REPO / "mappings"))
API_KEY = "test-key"
STARTUP_TIMEOUT = 20.0
HTTP_TIMEOUT = 30.0

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"tz": {"type": "string"}},
            "required": ["tz"],
        },
    },
}


# --------------------------------------------------------------------------------------------
# processes


class Proc:
    """A child process whose stdout and stderr are drained by threads (lines kept, ANSI stripped)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None):
        self.name = name
        self.lines: list[str] = []
        self._found: queue.Queue[str] = queue.Queue()
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(REPO),
        )
        RUNNING.append(self)
        for stream in (self.popen.stdout, self.popen.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r\n")
            self.lines.append(line)
            m = LISTENING.search(line)
            if m:
                self._found.put(m.group(1))
        stream.close()

    def wait_listening(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                return self._found.get(timeout=0.1)
            except queue.Empty:
                if self.popen.poll() is not None:
                    time.sleep(0.2)  # let the drain threads catch the last lines
                    break
        tail = "\n".join(self.lines[-20:])
        raise RuntimeError(
            f"{self.name} did not report 'listening on' (exit code {self.popen.poll()}):\n{tail}"
        )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()  # by PID: only the process this script started
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


RUNNING: list[Proc] = []


def stop_all() -> None:
    while RUNNING:
        RUNNING.pop().stop()


def on_signal(signum: int, _frame: Any) -> None:
    stop_all()
    sys.exit(128 + signum)


# --------------------------------------------------------------------------------------------
# checks


class Failure(Exception):
    pass


def expect(cond: Any, msg: str) -> None:
    if not cond:
        raise Failure(msg)


def eq(actual: Any, wanted: Any, what: str) -> None:
    if actual != wanted:
        raise Failure(f"{what}: expected {wanted!r}, got {actual!r}")


RESULTS: list[tuple[str, bool]] = []


def run(name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Failure as e:
        RESULTS.append((name, False))
        print(f"FAIL {name}: {e}", flush=True)
    except openai.APIStatusError as e:
        RESULTS.append((name, False))
        print(f"FAIL {name}: unexpected {type(e).__name__} {e.status_code}: {short(e.body)}", flush=True)
    except Exception as e:  # noqa: BLE001 - a check must never stop the run
        RESULTS.append((name, False))
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(f"FAIL {name}: {type(e).__name__}: {short(str(e))} (line {where.lineno})", flush=True)
    else:
        RESULTS.append((name, True))
        print(f"PASS {name}", flush=True)


def short(v: Any, limit: int = 600) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= limit else s[:limit] + "..."


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_usage(usage: Any, what: str) -> None:
    expect(isinstance(usage, dict), f"{what}: usage is not an object: {usage!r}")
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        expect(is_int(usage.get(k)), f"{what}: usage.{k} is not an integer: {usage!r}")
    eq(usage["total_tokens"], usage["prompt_tokens"] + usage["completion_tokens"], f"{what}: total_tokens")


def check_created(v: Any, what: str) -> None:
    expect(is_int(v), f"{what}: created is not an integer: {v!r}")
    expect(1_000_000_000 < v < 10_000_000_000, f"{what}: created is not Unix seconds: {v!r}")


def check_error_body(resp: httpx.Response, status: int | None, what: str) -> dict:
    """`{"error":{"message","type","param","code"}}` with JSON content type."""
    if status is not None:
        eq(resp.status_code, status, f"{what}: status (body {short(resp.text)})")
    ctype = resp.headers.get("content-type", "")
    expect("application/json" in ctype, f"{what}: content-type {ctype!r}, body {short(resp.text)}")
    try:
        body = resp.json()
    except ValueError:
        raise Failure(f"{what}: body is not JSON: {short(resp.text)}") from None
    err = body.get("error") if isinstance(body, dict) else None
    expect(isinstance(err, dict), f"{what}: no error object: {short(body)}")
    for k in ("message", "type", "param", "code"):
        expect(k in err, f"{what}: error.{k} missing: {short(body)}")
    expect(isinstance(err["message"], str) and err["message"], f"{what}: error.message empty: {short(body)}")
    expect(isinstance(err["type"], str) and err["type"], f"{what}: error.type empty: {short(body)}")
    expect(err["param"] is None or isinstance(err["param"], str), f"{what}: error.param: {short(body)}")
    expect(err["code"] is None or isinstance(err["code"], (str, int)), f"{what}: error.code: {short(body)}")
    return err


class RawStream:
    """The raw lines of a streamed response (body read to the end, or to an abort)."""

    def __init__(self, status: int, headers: httpx.Headers, lines: list[str], aborted: str | None):
        self.status = status
        self.headers = headers
        self.lines = lines
        self.aborted = aborted
        self.data = [ln[5:].removeprefix(" ") for ln in lines if ln.startswith("data:")]
        self.done = "[DONE]" in self.data
        self.errors = []
        for d in self.data:
            try:
                obj = json.loads(d)
            except ValueError:
                continue
            if isinstance(obj, dict) and "error" in obj:
                self.errors.append(obj)

    def describe(self) -> str:
        return short("\n".join(self.lines), 1500) + (f"\n[aborted: {self.aborted}]" if self.aborted else "")


def analyze_stream(rs: RawStream, *, include_usage: bool) -> dict:
    """Checks a successful chat stream; returns its content, tool calls, finish reason and usage."""
    eq(rs.status, 200, "stream status")
    ctype = rs.headers.get("content-type", "")
    expect(ctype.startswith("text/event-stream"), f"content-type is {ctype!r}")
    expect(rs.aborted is None, f"stream aborted: {rs.aborted}\n{rs.describe()}")
    for ln in rs.lines:
        expect(ln == "" or ln.startswith("data:") or ln.startswith(":"), f"non-data SSE line {ln!r}")
    expect(rs.data, "no data lines")
    eq(rs.data[-1], "[DONE]", "last data line")
    eq(rs.data.count("[DONE]"), 1, "number of [DONE] lines")
    expect(not rs.errors, f"error in stream: {short(rs.errors)}")
    chunks: list[dict] = []
    for d in rs.data[:-1]:
        try:
            obj = json.loads(d)
        except ValueError:
            raise Failure(f"data line is not JSON: {d!r}") from None
        try:
            ChatCompletionChunk.model_validate(obj)
        except Exception as e:  # pydantic.ValidationError
            raise Failure(f"chunk does not validate as ChatCompletionChunk: {e}; chunk {d}") from None
        chunks.append(obj)
    expect(chunks, "no chunks before [DONE]")
    first = chunks[0]
    expect(isinstance(first.get("id"), str) and first["id"].startswith("chatcmpl-"), f"id {first.get('id')!r}")
    check_created(first.get("created"), "first chunk")
    for i, c in enumerate(chunks):
        eq(c.get("id"), first["id"], f"chunk {i} id")
        eq(c.get("created"), first["created"], f"chunk {i} created")
        eq(c.get("object"), "chat.completion.chunk", f"chunk {i} object")
        expect(isinstance(c.get("model"), str) and c["model"], f"chunk {i} has no model")
        for ch in c["choices"]:
            eq(ch.get("index"), 0, f"chunk {i} choices[].index")
    expect(first["choices"], f"first chunk has no choices: {short(first)}")
    eq(first["choices"][0]["delta"].get("role"), "assistant", "first chunk delta.role")
    for i, c in enumerate(chunks[1:], 1):
        for ch in c["choices"]:
            expect("role" not in ch["delta"] or ch["delta"]["role"] is None, f"chunk {i} repeats role: {short(c)}")
    with_choices = [i for i, c in enumerate(chunks) if c["choices"]]
    finishing = [i for i, c in enumerate(chunks) for ch in c["choices"] if ch.get("finish_reason") is not None]
    eq(len(finishing), 1, "number of chunks with a finish_reason")
    eq(finishing[0], with_choices[-1], "index of the finish chunk (must be the last chunk with choices)")
    finish_chunk = chunks[finishing[0]]
    finish_reason = finish_chunk["choices"][0]["finish_reason"]
    usage_chunks = [i for i, c in enumerate(chunks) if c.get("usage") is not None]
    usage = None
    if include_usage:
        eq(len(usage_chunks), 1, "number of usage chunks")
        u = usage_chunks[0]
        expect(u > finishing[0], f"usage chunk {u} is not after the finish chunk {finishing[0]}")
        eq(u, len(chunks) - 1, "usage chunk position (must be right before [DONE])")
        eq(chunks[u]["choices"], [], "usage chunk choices")
        usage = chunks[u]["usage"]
        check_usage(usage, "usage chunk")
    else:
        eq(usage_chunks, [], "chunks with usage (include_usage not requested)")
        expect(
            all(c["choices"] for c in chunks),
            "chunk with empty choices although include_usage was not requested",
        )
    content = ""
    calls: dict[int, dict] = {}
    for i, c in enumerate(chunks):
        for ch in c["choices"]:
            delta = ch["delta"]
            if delta.get("content"):
                content += delta["content"]
            for tc in delta.get("tool_calls") or []:
                idx = tc.get("index")
                expect(is_int(idx), f"chunk {i}: tool call delta without index: {short(tc)}")
                fn = tc.get("function") or {}
                if idx not in calls:
                    expect(isinstance(tc.get("id"), str) and tc["id"], f"chunk {i}: first delta of call {idx} has no id")
                    eq(tc.get("type"), "function", f"chunk {i}: first delta of call {idx} type")
                    expect(isinstance(fn.get("name"), str) and fn["name"], f"chunk {i}: call {idx} has no name")
                    eq(fn.get("arguments"), "", f"chunk {i}: first delta of call {idx} arguments")
                    calls[idx] = {"id": tc["id"], "name": fn["name"], "arguments": ""}
                else:
                    expect(not tc.get("id") and not tc.get("type") and not fn.get("name"),
                           f"chunk {i}: later delta of call {idx} has more than index+arguments: {short(tc)}")
                    expect(isinstance(fn.get("arguments"), str), f"chunk {i}: later delta of call {idx}: {short(tc)}")
                    calls[idx]["arguments"] += fn["arguments"]
    eq(sorted(calls), list(range(len(calls))), "tool call indexes")
    return {"content": content, "calls": calls, "finish_reason": finish_reason, "usage": usage,
            "id": first["id"], "chunks": chunks}


# --------------------------------------------------------------------------------------------
# the mappings under test: one row each


@dataclass(frozen=True)
class ErrorCase:
    """A `FAIL ...` trigger of a fake and what Rosetta must answer for it."""

    check: str  # check name, e.g. error_429
    trigger: str  # text of the user message
    status: int  # HTTP status Rosetta must answer with
    sdk: type  # the openai exception class the SDK must raise
    retry_after: str | None = None  # the retry-after header Rosetta must keep (None: must be absent)
    type: str | None = None  # expected error.type, when the mapping defines it
    code: str | None = None  # expected error.code, when the mapping defines it


def tool_said(result: str) -> str:
    return f"Tool said: {result}"


def gemini_tool_said(result: str) -> str:
    # The Gemini fake answers with the JSON of the first functionResponse.response, which the
    # mapping sends as {"result": <tool message text>}.
    return "Tool said: " + json.dumps({"result": result}, separators=(",", ":"))


# -- upstream body expectations (read from the fake's GET /__requests) --

SYSTEM_MESSAGES = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "developer", "content": "Be terse."},
    {"role": "user", "content": "ping"},
]


def system_anthropic(up: dict) -> None:
    system = up.get("system")
    if isinstance(system, list):
        system = "\n".join(b.get("text", "") for b in system)
    expect(isinstance(system, str), f"upstream has no top-level system: {short(up)}")
    expect("You are a weather bot." in system and "Be terse." in system, f"upstream system misses a text: {system!r}")
    eq([m.get("role") for m in up.get("messages", [])], ["user"], "upstream message roles")


def system_ollama(up: dict) -> None:
    msgs = up.get("messages", [])
    sys_texts = [m.get("content") for m in msgs if m.get("role") == "system"]
    expect("You are a weather bot." in sys_texts, f"system message not sent as role system: {short(msgs)}")
    expect("Be terse." in sys_texts, f"developer message not sent as role system: {short(msgs)}")
    eq(msgs[-1].get("role"), "user", "last upstream message role")


def system_openai(up: dict) -> None:
    # Azure and OpenAI-compatible servers take the OpenAI body as it is.
    eq(up.get("messages"), SYSTEM_MESSAGES, "upstream messages")


def system_gemini(up: dict) -> None:
    texts = [p.get("text", "") for p in (up.get("systemInstruction") or {}).get("parts", [])]
    joined = "\n".join(texts)
    expect("You are a weather bot." in joined and "Be terse." in joined,
           f"upstream systemInstruction misses a text: {short(up.get('systemInstruction'))}")
    eq([c.get("role") for c in up.get("contents", [])], ["user"], "upstream contents roles")
    eq(up["contents"][0].get("parts"), [{"text": "ping"}], "upstream user parts")


def system_cohere(up: dict) -> None:
    eq([(m.get("role"), m.get("content")) for m in up.get("messages", [])],
       [("system", "You are a weather bot."), ("system", "Be terse."), ("user", "ping")], "upstream messages")


def system_tgi_chatml(up: dict) -> None:
    eq(up.get("inputs"),
       "<|im_start|>system\nYou are a weather bot.<|im_end|>\n<|im_start|>system\nBe terse.<|im_end|>\n"
       "<|im_start|>user\nping<|im_end|>\n<|im_start|>assistant\n", "upstream inputs (ChatML)")


def system_vertex_anthropic(up: dict) -> None:
    # Claude on Vertex: the Messages body without `model` (it is in the URL), with the version.
    system_anthropic(up)
    expect("model" not in up, f"upstream body has a model on Vertex: {short(up)}")
    eq(up.get("anthropic_version"), "vertex-2023-10-16", "upstream anthropic_version")


def system_bedrock(up: dict) -> None:
    eq(up.get("system"), [{"text": "You are a weather bot."}, {"text": "Be terse."}], "upstream system blocks")
    eq(up.get("messages"), [{"role": "user", "content": [{"text": "ping"}]}], "upstream messages")


# params_scalar sends max_tokens=77, stop="END", temperature=1.7, top_p=0.9, user="user-123".
def params_scalar_anthropic(up: dict) -> None:
    eq(up.get("max_tokens"), 77, "upstream max_tokens")
    eq(up.get("stop_sequences"), ["END"], "upstream stop_sequences")
    eq(up.get("temperature"), 1, "upstream temperature (1.7 clamped to 1)")
    # Newer Claude models refuse temperature and top_p together: the mapping sends top_p only
    # when the client sends no temperature (mappings/anthropic.yaml, commit 1e15468).
    expect("top_p" not in up, f"upstream has top_p next to temperature: {short(up)}")
    eq((up.get("metadata") or {}).get("user_id"), "user-123", "upstream metadata.user_id")


def params_scalar_ollama(up: dict) -> None:
    opts = up.get("options") or {}
    eq(opts.get("num_predict"), 77, "upstream options.num_predict")
    eq(opts.get("stop"), ["END"], "upstream options.stop")
    eq(opts.get("temperature"), 1.7, "upstream options.temperature")
    eq(opts.get("top_p"), 0.9, "upstream options.top_p")


def params_scalar_openai(up: dict) -> None:
    for k, v in (("max_tokens", 77), ("stop", "END"), ("temperature", 1.7), ("top_p", 0.9), ("user", "user-123")):
        eq(up.get(k), v, f"upstream {k}")


def params_scalar_gemini(up: dict) -> None:
    g = up.get("generationConfig") or {}
    eq(g.get("maxOutputTokens"), 77, "upstream generationConfig.maxOutputTokens")
    eq(g.get("stopSequences"), ["END"], "upstream generationConfig.stopSequences")
    eq(g.get("temperature"), 1.7, "upstream generationConfig.temperature")
    eq(g.get("topP"), 0.9, "upstream generationConfig.topP")


def params_scalar_cohere(up: dict) -> None:
    eq(up.get("max_tokens"), 77, "upstream max_tokens")
    eq(up.get("stop_sequences"), ["END"], "upstream stop_sequences")
    eq(up.get("temperature"), 1.7, "upstream temperature")
    eq(up.get("p"), 0.9, "upstream p")
    expect("user" not in up, f"upstream has user (Cohere has no such field): {short(up)}")


def params_scalar_tgi(up: dict) -> None:
    p = up.get("parameters") or {}
    eq(p.get("max_new_tokens"), 77, "upstream parameters.max_new_tokens")
    eq(p.get("stop"), ["END", "<|im_end|>"], "upstream parameters.stop (client's + the template's end token)")
    eq(p.get("temperature"), 1.7, "upstream parameters.temperature")
    eq(p.get("top_p"), 0.9, "upstream parameters.top_p")
    eq(p.get("do_sample"), True, "upstream parameters.do_sample")
    eq(p.get("details"), True, "upstream parameters.details")


def params_scalar_bedrock(up: dict) -> None:
    # Converse takes temperature 0..1 (1.7 is clamped) and, for Claude 4.5, not beside topP.
    eq(up.get("inferenceConfig"), {"maxTokens": 77, "temperature": 1, "stopSequences": ["END"]},
       "upstream inferenceConfig")


# params_list sends max_completion_tokens=55, stop=["END", "STOP"], temperature=0.3.
def params_list_anthropic(up: dict) -> None:
    eq(up.get("max_tokens"), 55, "upstream max_tokens (from max_completion_tokens)")
    eq(up.get("stop_sequences"), ["END", "STOP"], "upstream stop_sequences")
    eq(up.get("temperature"), 0.3, "upstream temperature")


def params_list_ollama(up: dict) -> None:
    opts = up.get("options") or {}
    eq(opts.get("num_predict"), 55, "upstream options.num_predict (from max_completion_tokens)")
    eq(opts.get("stop"), ["END", "STOP"], "upstream options.stop")
    eq(opts.get("temperature"), 0.3, "upstream options.temperature")


def params_list_openai(up: dict) -> None:
    for k, v in (("max_completion_tokens", 55), ("stop", ["END", "STOP"]), ("temperature", 0.3)):
        eq(up.get(k), v, f"upstream {k}")


def params_list_gemini(up: dict) -> None:
    g = up.get("generationConfig") or {}
    eq(g.get("maxOutputTokens"), 55, "upstream generationConfig.maxOutputTokens (from max_completion_tokens)")
    eq(g.get("stopSequences"), ["END", "STOP"], "upstream generationConfig.stopSequences")
    eq(g.get("temperature"), 0.3, "upstream generationConfig.temperature")


def params_list_cohere(up: dict) -> None:
    eq(up.get("max_tokens"), 55, "upstream max_tokens (from max_completion_tokens)")
    eq(up.get("stop_sequences"), ["END", "STOP"], "upstream stop_sequences")
    eq(up.get("temperature"), 0.3, "upstream temperature")


def params_list_tgi(up: dict) -> None:
    p = up.get("parameters") or {}
    eq(p.get("max_new_tokens"), 55, "upstream parameters.max_new_tokens (from max_completion_tokens)")
    eq(p.get("stop"), ["END", "STOP", "<|im_end|>"], "upstream parameters.stop")
    eq(p.get("temperature"), 0.3, "upstream parameters.temperature")


def params_list_bedrock(up: dict) -> None:
    eq(up.get("inferenceConfig"), {"maxTokens": 55, "temperature": 0.3, "stopSequences": ["END", "STOP"]},
       "upstream inferenceConfig")


# tool round trip: the upstream request that carries the call and its result ("18C and sunny").
def round_trip_anthropic(up: dict, call: dict) -> None:
    blocks = [b for m in up["messages"] if isinstance(m.get("content"), list) for b in m["content"]]
    uses = [b for b in blocks if b.get("type") == "tool_use"]
    results = [b for b in blocks if b.get("type") == "tool_result"]
    eq([(u.get("id"), u.get("name"), u.get("input")) for u in uses],
       [(call["id"], "get_weather", {"city": "Paris"})], "upstream tool_use")
    eq([r.get("tool_use_id") for r in results], [call["id"]], "upstream tool_result ids")


def round_trip_ollama(up: dict, call: dict) -> None:
    tool_msgs = [m for m in up["messages"] if m.get("role") == "tool"]
    eq(len(tool_msgs), 1, "upstream tool messages")
    eq(tool_msgs[0].get("tool_name"), "get_weather", "upstream tool_name")
    asst = [m for m in up["messages"] if m.get("role") == "assistant"]
    eq(asst[0]["tool_calls"][0]["function"].get("arguments"), {"city": "Paris"}, "upstream arguments")


def round_trip_openai(up: dict, call: dict) -> None:
    msgs = up["messages"]
    eq([m.get("role") for m in msgs], ["user", "assistant", "tool"], "upstream roles")
    calls = msgs[1].get("tool_calls") or []
    eq([(c.get("id"), c.get("type"), c["function"].get("name")) for c in calls],
       [(call["id"], "function", "get_weather")], "upstream assistant tool_calls")
    eq(json.loads(calls[0]["function"]["arguments"]), {"city": "Paris"}, "upstream arguments")
    eq((msgs[2].get("tool_call_id"), msgs[2].get("content")), (call["id"], "18C and sunny"), "upstream tool message")


def round_trip_gemini(up: dict, call: dict) -> None:
    contents = up["contents"]
    eq([c.get("role") for c in contents], ["user", "model", "user"], "upstream contents roles")
    fcalls = [p for p in contents[1].get("parts", []) if "functionCall" in p]
    eq([(p["functionCall"].get("name"), p["functionCall"].get("args")) for p in fcalls],
       [("get_weather", {"city": "Paris"})], "upstream functionCall")
    if call["id"].startswith("call_sig_"):  # the thought signature travels in the id and must come back
        eq(fcalls[0].get("thoughtSignature"), call["id"].removeprefix("call_sig_"), "upstream thoughtSignature")
    fresp = [p.get("functionResponse") for p in contents[2].get("parts", []) if "functionResponse" in p]
    eq(fresp, [{"name": "get_weather", "response": {"result": "18C and sunny"}}], "upstream functionResponse")


def round_trip_cohere(up: dict, call: dict) -> None:
    msgs = up["messages"]
    eq([m.get("role") for m in msgs], ["user", "assistant", "tool"], "upstream roles")
    calls = msgs[1].get("tool_calls") or []
    eq([(c.get("id"), c.get("type"), c["function"].get("name")) for c in calls],
       [(call["id"], "function", "get_weather")], "upstream assistant tool_calls")
    args = calls[0]["function"].get("arguments")
    expect(isinstance(args, str), f"upstream arguments is not a JSON string: {args!r}")
    eq(json.loads(args), {"city": "Paris"}, "upstream arguments")
    eq((msgs[2].get("tool_call_id"), msgs[2].get("content")), (call["id"], "18C and sunny"), "upstream tool message")


def round_trip_bedrock(up: dict, call: dict) -> None:
    msgs = up["messages"]
    eq([m.get("role") for m in msgs], ["user", "assistant", "user"], "upstream roles")
    uses = [b["toolUse"] for b in msgs[1]["content"] if "toolUse" in b]
    eq([(u.get("toolUseId"), u.get("name"), u.get("input")) for u in uses],
       [(call["id"], "get_weather", {"city": "Paris"})], "upstream toolUse")
    eq(msgs[2]["content"], [{"toolResult": {"toolUseId": call["id"], "content": [{"text": "18C and sunny"}]}}],
       "upstream toolResult")
    expect("toolConfig" in up, f"upstream has tool blocks but no toolConfig: {short(up)}")


# vision: a text part and a data-URL image part (a 1x1 PNG) in one user message.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
DATA_URL = f"data:image/png;base64,{PNG}"
VISION_TEXT = "What is in this image?"
VISION_PARTS = [{"type": "text", "text": VISION_TEXT}, {"type": "image_url", "image_url": {"url": DATA_URL}}]


def vision_anthropic(up: dict) -> None:
    eq(up["messages"][-1].get("content"),
       [{"type": "text", "text": VISION_TEXT},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
       "upstream content blocks")


def vision_bedrock(up: dict) -> None:
    eq(up["messages"][-1].get("content"),
       [{"text": VISION_TEXT}, {"image": {"format": "png", "source": {"bytes": PNG}}}], "upstream content blocks")


def vision_ollama(up: dict) -> None:
    last = up["messages"][-1]
    eq((last.get("content"), last.get("images")), (VISION_TEXT, [PNG]), "upstream content and images")


def vision_openai(up: dict) -> None:
    eq(up["messages"], [{"role": "user", "content": VISION_PARTS}], "upstream messages")


def vision_gemini(up: dict) -> None:
    eq(up["contents"], [{"role": "user", "parts": [{"text": VISION_TEXT},
                                                   {"inlineData": {"mimeType": "image/png", "data": PNG}}]}],
       "upstream contents")


def vision_cohere(up: dict) -> None:
    eq(up["messages"], [{"role": "user", "content": VISION_PARTS}], "upstream messages")


def vision_tgi_chatml(up: dict) -> None:
    # TGI's inline image syntax inside the prompt text (read by vision models).
    eq(up.get("inputs"), f"<|im_start|>user\n{VISION_TEXT}\n![]({DATA_URL})<|im_end|>\n<|im_start|>assistant\n",
       "upstream inputs (ChatML)")


@dataclass(frozen=True)
class Row:
    name: str  # the mapping (mappings/<name>.yaml, served at /<name>/v1)
    provider: str  # fake-upstream --provider
    model: str
    env: Callable[[str], dict[str, str]]  # fake URL -> Rosetta's environment for this mapping
    fake_key: bool  # the fake is started with --api-key (the mapping sends the key)
    errors: tuple[ErrorCase, ...]
    system_upstream: Callable[[dict], None]
    params_scalar_upstream: Callable[[dict], None]
    params_list_upstream: Callable[[dict], None]
    round_trip_upstream: Callable[[dict, dict], None] | None = None  # None: the mapping has no tools
    think: bool = False  # the fake answers THINK with reasoning
    stopseq: bool = False  # the fake answers STOPSEQ with a stop-sequence finish
    filter_trigger: str | None = None  # a trigger the fake answers with a content filter finish
    listed: tuple[str, ...] = ()  # ids the fake's model listing adds after the declared ones
    no_models: bool = False  # the mapping declares no models and has no `models` route: empty list
    tool_said: Callable[[str], str] = tool_said
    vision_upstream: Callable[[dict], None] | None = None  # None: no image content parts
    vision_answer: str = f"Hello! You said: {VISION_TEXT}"  # the fake's answer to VISION_PARTS
    # Texts whose upstream stream has something extra that must not show (e.g. Cohere's
    # optional trailing `data: [DONE]`): the stream is still clean, with the usual answer.
    clean_stream_triggers: tuple[str, ...] = ()

    @property
    def tools(self) -> bool:
        return self.round_trip_upstream is not None


KEY_DIR = tempfile.mkdtemp(prefix="rosetta-conformance-")


def vertex_env(url: str) -> dict[str, str]:
    """Rosetta's environment for a Vertex fake at `url`: the TEST service-account key file it
    hands out (its token_uri is the fake's /token), written to a temporary file."""
    key = httpx.get(f"{url}/__key_file", timeout=HTTP_TIMEOUT)
    key.raise_for_status()
    path = Path(KEY_DIR) / "vertex-key.json"
    path.write_text(key.text)
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "VERTEX_PROJECT": "test-project",
            "VERTEX_LOCATION": "us-central1", "VERTEX_BASE_URL": url}


R = openai.RateLimitError
S = openai.InternalServerError
B = openai.BadRequestError
U = openai.UnprocessableEntityError

ROWS: tuple[Row, ...] = (
    Row("anthropic", "anthropic", "claude-sonnet-4-5",
        lambda u: {"ANTHROPIC_BASE_URL": u, "ANTHROPIC_API_KEY": API_KEY}, True,
        (ErrorCase("error_429", "FAIL 429", 429, R, "7"),
         ErrorCase("error_500", "FAIL 500", 500, S),
         ErrorCase("error_529_overloaded", "FAIL 529", 503, S)),
        system_anthropic, params_scalar_anthropic, params_list_anthropic, round_trip_anthropic,
        think=True, stopseq=True, vision_upstream=vision_anthropic),
    Row("ollama", "ollama", "llama3.2", lambda u: {"OLLAMA_BASE_URL": u}, False,
        (ErrorCase("error_429", "FAIL 429", 429, R),
         ErrorCase("error_500", "FAIL 500", 500, S),
         ErrorCase("error_400", "FAIL 400", 400, B)),
        system_ollama, params_scalar_ollama, params_list_ollama, round_trip_ollama,
        think=True, listed=("llama3.2:latest", "qwen2.5:7b"), vision_upstream=vision_ollama),
    Row("azure", "azure", "gpt-4o",
        lambda u: {"AZURE_OPENAI_BASE_URL": u, "AZURE_OPENAI_API_KEY": API_KEY}, True,
        (ErrorCase("error_429", "FAIL 429", 429, R, "7", code="rate_limit_exceeded"),
         ErrorCase("error_500", "FAIL 500", 500, S, type="server_error"),
         ErrorCase("error_503", "FAIL 503", 503, S, type="server_error"),
         ErrorCase("error_400", "FAIL 400", 400, B, type="invalid_request_error"),
         ErrorCase("error_400_content_filter", "FILTER PROMPT", 400, B, code="content_filter")),
        system_openai, params_scalar_openai, params_list_openai, round_trip_openai,
        filter_trigger="FILTERED", no_models=True, vision_upstream=vision_openai),
    Row("openai-compatible", "openai", "gpt-4o-mini",
        lambda u: {"OPENAI_COMPATIBLE_BASE_URL": f"{u}/v1", "OPENAI_COMPATIBLE_API_KEY": API_KEY}, True,
        (ErrorCase("error_429", "FAIL 429", 429, R, "7", code="rate_limit_exceeded"),
         ErrorCase("error_500", "FAIL 500", 500, S, type="server_error"),
         ErrorCase("error_503", "FAIL 503", 503, S, type="server_error"),
         ErrorCase("error_400", "FAIL 400", 400, B, type="invalid_request_error")),
        system_openai, params_scalar_openai, params_list_openai, round_trip_openai,
        filter_trigger="FILTERED", listed=("gpt-4o-mini", "text-embedding-3-small"),
        vision_upstream=vision_openai),
    Row("gemini", "gemini", "gemini-2.5-flash",
        lambda u: {"GEMINI_BASE_URL": u, "GEMINI_API_KEY": API_KEY}, True,
        # The Gemini fake's 429 carries RetryInfo (7s) in the body only: no retry-after header.
        (ErrorCase("error_429", "FAIL 429", 429, R, type="resource_exhausted", code="RESOURCE_EXHAUSTED"),
         ErrorCase("error_500", "FAIL 500", 500, S, type="internal", code="INTERNAL"),
         ErrorCase("error_503", "FAIL 503", 503, S, type="unavailable", code="UNAVAILABLE"),
         ErrorCase("error_400", "FAIL 400", 400, B, type="invalid_argument", code="INVALID_ARGUMENT")),
        system_gemini, params_scalar_gemini, params_list_gemini, round_trip_gemini,
        think=True, filter_trigger="SAFETY", listed=("gemini-2.0-flash",), tool_said=gemini_tool_said,
        vision_upstream=vision_gemini),
    Row("cohere", "cohere", "command-a-03-2025",
        lambda u: {"COHERE_BASE_URL": u, "COHERE_API_KEY": API_KEY}, True,
        (ErrorCase("error_429", "FAIL 429", 429, R),
         ErrorCase("error_500", "FAIL 500", 500, S),
         ErrorCase("error_400", "FAIL 400", 400, B)),
        system_cohere, params_scalar_cohere, params_list_cohere, round_trip_cohere,
        think=True, stopseq=True, vision_upstream=vision_cohere, clean_stream_triggers=("DONE MARKER",)),
    Row("tgi", "tgi", "tgi",
        lambda u: {"TGI_BASE_URL": u, "TGI_API_KEY": API_KEY}, True,
        (ErrorCase("error_422", "FAIL 422", 422, U, type="invalid_request_error", code="validation"),
         ErrorCase("error_424_generation", "FAIL 424", 502, S, code="generation"),
         ErrorCase("error_429", "FAIL 429", 429, R, type="rate_limit_error", code="overloaded"),
         ErrorCase("error_500", "FAIL 500", 500, S, code="incomplete_generation")),
        system_tgi_chatml, params_scalar_tgi, params_list_tgi, None,
        stopseq=True, listed=("meta-llama/Meta-Llama-3.1-8B-Instruct",), vision_upstream=vision_tgi_chatml,
        vision_answer=f"Hello! You said: {VISION_TEXT}\n![]({DATA_URL})"),
    # The fake verifies every request's Signature Version 4 with the secret it is given
    # (--api-key); Rosetta signs with the same key pair.
    Row("bedrock", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        lambda u: {"BEDROCK_BASE_URL": u, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                   "AWS_SECRET_ACCESS_KEY": API_KEY}, True,
        (ErrorCase("error_429", "FAIL 429", 429, R),
         ErrorCase("error_500", "FAIL 500", 500, S),
         ErrorCase("error_400", "FAIL 400", 400, B)),
        system_bedrock, params_scalar_bedrock, params_list_bedrock, round_trip_bedrock,
        think=True, stopseq=True, vision_upstream=vision_bedrock,
        vision_answer=f"Hello! You said: {VISION_TEXT} I see 1 image(s): png."),
    # Vertex AI: one fake serves both publishers and, at /token, the token endpoint that mints
    # the bearer tokens it then requires (from the TEST service-account key it hands out).
    Row("vertex", "vertex", "gemini-2.5-flash", vertex_env, False,
        (ErrorCase("error_429", "FAIL 429", 429, R, type="resource_exhausted", code="RESOURCE_EXHAUSTED"),
         ErrorCase("error_500", "FAIL 500", 500, S, type="internal", code="INTERNAL"),
         ErrorCase("error_503", "FAIL 503", 503, S, type="unavailable", code="UNAVAILABLE"),
         ErrorCase("error_400", "FAIL 400", 400, B, type="invalid_argument", code="INVALID_ARGUMENT")),
        system_gemini, params_scalar_gemini, params_list_gemini, round_trip_gemini,
        think=True, filter_trigger="SAFETY", tool_said=gemini_tool_said, vision_upstream=vision_gemini,
        no_models=True),  # Gemini ids are not declared and Vertex's listing is not mapped
    Row("vertex-anthropic", "vertex", "claude-sonnet-4-5@20250929", vertex_env, False,
        (ErrorCase("error_429", "FAIL 429", 429, R, "7"),
         ErrorCase("error_500", "FAIL 500", 500, S),
         ErrorCase("error_529_overloaded", "FAIL 529", 503, S)),
        system_vertex_anthropic, params_scalar_anthropic, params_list_anthropic, round_trip_anthropic,
        think=True, stopseq=True, vision_upstream=vision_anthropic),
)

ENV_PREFIXES = ("ANTHROPIC_", "OLLAMA_", "AZURE_OPENAI_", "OPENAI_COMPATIBLE_", "GEMINI_", "COHERE_", "TGI_",
                "ROSETTA_", "AWS_", "BEDROCK_", "VERTEX_", "GOOGLE_")


# --------------------------------------------------------------------------------------------
# one mapping


def declared_models(name: str) -> list[tuple[str, str | None]]:
    """The `models:` list of a mapping file: (id, owned_by) of each entry.

    Entries are plain strings (`- claude-sonnet-4-5`, a trailing comment allowed) or flow
    mappings (`- {id: gemini-2.5-flash, owned_by: google}`)."""
    text = (Path(MAPPINGS) / f"{name}.yaml").read_text()
    out, inside = [], False
    for line in text.splitlines():
        if re.match(r"^models:\s*$", line):
            inside = True
            continue
        if inside:
            m = re.match(r"^\s+-\s+\{(.*)\}\s*(#.*)?$", line)
            if m:
                fields = {}
                for kv in m.group(1).split(","):
                    k, _, v = kv.partition(":")
                    fields[k.strip()] = v.strip().strip("'\"")
                out.append((fields.get("id", ""), fields.get("owned_by")))
                continue
            m = re.match(r"^\s+-\s+['\"]?([^'\"\s#]+)", line)
            if m:
                out.append((m.group(1), None))
            elif line.strip() and not line.lstrip().startswith("#"):
                break
    return out


class Suite:
    def __init__(self, row: Row, proxy: str, fake: str, http: httpx.Client):
        self.row, self.proxy, self.fake, self.http = row, proxy, fake, http
        self.name, self.model = row.name, row.model
        self.base = f"{proxy}/{row.name}/v1"
        self.url = f"{self.base}/chat/completions"
        self.client = OpenAI(base_url=self.base, api_key="unused", max_retries=0, timeout=HTTP_TIMEOUT)

    # -- helpers --

    def body(self, text: str | list, **kw: Any) -> dict:
        return {"model": self.model, "messages": [{"role": "user", "content": text}], **kw}

    def post(self, body: Any) -> httpx.Response:
        return self.http.post(self.url, json=body)

    def completion(self, body: dict) -> dict:
        r = self.post(body)
        eq(r.status_code, 200, f"status (body {short(r.text)})")
        ctype = r.headers.get("content-type", "")
        expect(ctype.startswith("application/json"), f"content-type {ctype!r}")
        raw = r.json()
        try:
            ChatCompletion.model_validate(raw)
        except Exception as e:
            raise Failure(f"response does not validate as ChatCompletion: {e}; body {short(raw)}") from None
        expect(isinstance(raw.get("id"), str) and raw["id"].startswith("chatcmpl-"), f"id {raw.get('id')!r}")
        eq(raw.get("object"), "chat.completion", "object")
        check_created(raw.get("created"), "completion")
        expect(isinstance(raw.get("model"), str) and raw["model"], "model missing")
        eq(len(raw["choices"]), 1, "number of choices")
        eq(raw["choices"][0].get("index"), 0, "choices[0].index")
        eq(raw["choices"][0]["message"].get("role"), "assistant", "message.role")
        check_usage(raw.get("usage"), "completion")
        return raw

    def stream(self, body: dict) -> RawStream:
        body = {**body, "stream": True}
        lines: list[str] = []
        aborted = None
        with self.http.stream("POST", self.url, json=body) as r:
            try:
                for line in r.iter_lines():
                    lines.append(line)
            except httpx.HTTPError as e:
                aborted = f"{type(e).__name__}: {e}"
            return RawStream(r.status_code, r.headers, lines, aborted)

    def clear_upstream(self) -> None:
        r = self.http.delete(f"{self.fake}/__requests")
        expect(r.status_code < 300, f"cannot clear the fake's requests: {r.status_code}")

    def upstream_body(self) -> dict:
        r = self.http.get(f"{self.fake}/__requests")
        reqs = [q for q in r.json() if q.get("method") == "POST"]
        expect(reqs, "the fake upstream recorded no request")
        return reqs[-1]["body"]

    # -- checks --

    def checks(self) -> list[tuple[str, Callable[[], None]]]:
        row = self.row
        out = [
            ("nonstream_text", self.nonstream_text),
            ("nonstream_text_sdk", self.nonstream_text_sdk),
            ("content_parts", self.content_parts),
            ("system_and_developer", self.system_and_developer),
        ]
        if row.vision_upstream:
            out.append(("vision_image_part", self.vision))
        out += [
            ("stream_text", self.stream_text),
            ("stream_text_sdk", self.stream_text_sdk),
            ("stream_include_usage", self.stream_include_usage),
        ]
        if row.think:
            out.append(("think", self.think))
        out.append(("max_tokens_finish_length", self.max_tokens_finish_length))
        if row.stopseq:
            out.append(("stop_sequence_finish_stop", self.stop_sequence))
        if row.filter_trigger:
            out.append(("content_filter_finish", self.content_filter))
        for trigger in row.clean_stream_triggers:
            name = "stream_clean_" + re.sub(r"\W+", "_", trigger.lower())
            out.append((name, (lambda t=trigger: self.clean_stream(t))))
        if row.tools:
            out += [
                ("tools_nonstream", self.tools_nonstream),
                ("tools_stream", self.tools_stream),
                ("two_tools_nonstream", self.two_tools_nonstream),
                ("two_tools_stream", self.two_tools_stream),
                ("tool_round_trip", self.tool_round_trip),
                ("tool_round_trip_stream_sdk_message", self.tool_round_trip_stream),
            ]
        out.append(("sdk_stream_helper_text", self.sdk_stream_helper_text))
        if row.tools:
            out.append(("sdk_stream_helper_tools", self.sdk_stream_helper_tools))
        out += [
            ("params_scalar_stop", self.params_scalar),
            ("params_list_stop", self.params_list),
        ]
        out += [(case.check, (lambda c=case: self.error_case(c))) for case in row.errors]
        out += [
            ("error_garbage", self.error_garbage),
            ("error_garbage_stream", self.error_garbage_stream),
            ("error_invalid_json", self.error_invalid_json),
            ("error_midstream", self.error_midstream),
            ("error_reset_stream", self.error_reset_stream),
            ("models_list", self.models_list),
        ]
        return out

    def nonstream_text(self) -> None:
        raw = self.completion(self.body("hello there"))
        ch = raw["choices"][0]
        eq(ch["message"].get("content"), "Hello! You said: hello there", "content")
        eq(ch.get("finish_reason"), "stop", "finish_reason")
        expect(not ch["message"].get("tool_calls"), "unexpected tool_calls")

    def nonstream_text_sdk(self) -> None:
        resp = self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": "hi sdk"}])
        eq(resp.choices[0].message.content, "Hello! You said: hi sdk", "content")
        eq(resp.choices[0].finish_reason, "stop", "finish_reason")
        eq(resp.object, "chat.completion", "object")
        expect(resp.usage is not None and resp.usage.total_tokens > 0, f"usage {resp.usage!r}")

    def content_parts(self) -> None:
        parts = [{"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}]
        raw = self.completion(self.body(parts))
        eq(raw["choices"][0]["message"].get("content"), "Hello! You said: first part\nsecond part", "content")

    def vision(self) -> None:
        self.clear_upstream()
        raw = self.completion(self.body(VISION_PARTS))
        eq(raw["choices"][0]["message"].get("content"), self.row.vision_answer, "content")
        assert self.row.vision_upstream is not None
        self.row.vision_upstream(self.upstream_body())
        # The SDK sends the same parts.
        resp = self.client.chat.completions.create(model=self.model,
                                                   messages=[{"role": "user", "content": VISION_PARTS}])
        eq(resp.choices[0].message.content, self.row.vision_answer, "SDK content")

    def system_and_developer(self) -> None:
        self.clear_upstream()
        raw = self.completion({"model": self.model, "messages": SYSTEM_MESSAGES})
        eq(raw["choices"][0]["message"].get("content"), "Hello! You said: ping", "content")
        self.row.system_upstream(self.upstream_body())

    def stream_text(self) -> None:
        text = "stream me please"
        s = analyze_stream(self.stream(self.body(text)), include_usage=False)
        nonstream = self.completion(self.body(text))["choices"][0]["message"]["content"]
        eq(s["content"], nonstream, "stream content vs non-stream content")
        eq(s["content"], f"Hello! You said: {text}", "content")
        eq(s["finish_reason"], "stop", "finish_reason")
        eq(s["calls"], {}, "tool calls")

    def stream_text_sdk(self) -> None:
        stream = self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "sdk stream"}], stream=True)
        content, finish, ids = "", None, set()
        for chunk in stream:
            ids.add(chunk.id)
            for ch in chunk.choices:
                content += ch.delta.content or ""
                finish = ch.finish_reason or finish
        eq(content, "Hello! You said: sdk stream", "content")
        eq(finish, "stop", "finish_reason")
        eq(len(ids), 1, "distinct chunk ids")

    def stream_include_usage(self) -> None:
        body = self.body("count my tokens", stream_options={"include_usage": True})
        s = analyze_stream(self.stream(body), include_usage=True)
        eq(s["content"], "Hello! You said: count my tokens", "content")
        expect(s["usage"]["completion_tokens"] > 0, f"completion_tokens {s['usage']}")

    def think(self) -> None:
        raw = self.completion(self.body("THINK about it"))
        msg = raw["choices"][0]["message"]
        eq(msg.get("content"), "Hello! You said: THINK about it", "content")
        eq(raw["choices"][0].get("finish_reason"), "stop", "finish_reason")
        expect(isinstance(msg.get("reasoning_content"), str) and msg["reasoning_content"],
               f"no reasoning_content: {short(msg)}")
        s = analyze_stream(self.stream(self.body("THINK about it")), include_usage=False)
        eq(s["content"], "Hello! You said: THINK about it", "stream content")
        reasoning = "".join(ch["delta"].get("reasoning_content") or "" for c in s["chunks"] for ch in c["choices"])
        eq(reasoning, msg["reasoning_content"], "stream reasoning_content vs non-stream")

    def clean_stream(self, trigger: str) -> None:
        text = f"{trigger} please"
        s = analyze_stream(self.stream(self.body(text, stream_options={"include_usage": True})), include_usage=True)
        eq(s["content"], f"Hello! You said: {text}", "content")
        eq(s["finish_reason"], "stop", "finish_reason")

    def max_tokens_finish_length(self) -> None:
        raw = self.completion(self.body("MAX TOKENS now"))
        eq(raw["choices"][0].get("finish_reason"), "length", "finish_reason")
        s = analyze_stream(self.stream(self.body("MAX TOKENS now")), include_usage=False)
        eq(s["finish_reason"], "length", "stream finish_reason")

    def stop_sequence(self) -> None:
        """A stop-sequence finish is `stop`, and the stop sequence is not part of the text."""
        body = self.body("STOPSEQ now", stop=["END"])
        raw = self.completion(body)
        ch = raw["choices"][0]
        eq(ch["message"].get("content"), "Hello! You said: STOPSEQ now", "content")
        eq(ch.get("finish_reason"), "stop", "finish_reason")
        s = analyze_stream(self.stream(body), include_usage=False)
        eq(s["content"], "Hello! You said: STOPSEQ now", "stream content")
        eq(s["finish_reason"], "stop", "stream finish_reason")

    def content_filter(self) -> None:
        text = f"{self.row.filter_trigger} please"
        raw = self.completion(self.body(text))
        eq(raw["choices"][0].get("finish_reason"), "content_filter", "finish_reason")
        s = analyze_stream(self.stream(self.body(text)), include_usage=False)
        eq(s["finish_reason"], "content_filter", "stream finish_reason")

    def _check_calls(self, calls: list[dict], names: list[str], args: list[dict]) -> None:
        eq([c["function"]["name"] for c in calls], names, "tool names")
        ids = [c.get("id") for c in calls]
        expect(all(isinstance(i, str) and i for i in ids), f"tool call ids {ids}")
        eq(len(set(ids)), len(ids), "distinct tool call ids")
        for c, want in zip(calls, args):
            eq(c.get("type"), "function", "tool call type")
            a = c["function"]["arguments"]
            expect(isinstance(a, str), f"arguments is not a JSON string: {a!r}")
            eq(json.loads(a), want, "parsed arguments")

    def tools_nonstream(self) -> None:
        raw = self.completion(self.body("What is the weather?", tools=[WEATHER]))
        ch = raw["choices"][0]
        eq(ch.get("finish_reason"), "tool_calls", "finish_reason")
        self._check_calls(ch["message"].get("tool_calls") or [], ["get_weather"], [{"city": "Paris"}])

    def tools_stream(self) -> None:
        s = analyze_stream(self.stream(self.body("What is the weather?", tools=[WEATHER])), include_usage=False)
        eq(s["finish_reason"], "tool_calls", "finish_reason")
        calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                 for _, c in sorted(s["calls"].items())]
        self._check_calls(calls, ["get_weather"], [{"city": "Paris"}])

    def two_tools_nonstream(self) -> None:
        raw = self.completion(self.body("TWO TOOLS please", tools=[WEATHER, TIME]))
        ch = raw["choices"][0]
        eq(ch.get("finish_reason"), "tool_calls", "finish_reason")
        self._check_calls(ch["message"].get("tool_calls") or [], ["get_weather", "get_time"],
                          [{"city": "Paris"}, {"tz": "Paris"}])

    def two_tools_stream(self) -> None:
        s = analyze_stream(self.stream(self.body("TWO TOOLS please", tools=[WEATHER, TIME])), include_usage=False)
        eq(sorted(s["calls"]), [0, 1], "tool call indexes")
        eq(s["finish_reason"], "tool_calls", "finish_reason")
        calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                 for _, c in sorted(s["calls"].items())]
        self._check_calls(calls, ["get_weather", "get_time"], [{"city": "Paris"}, {"tz": "Paris"}])

    def tool_round_trip(self) -> None:
        first = self.completion(self.body("What is the weather?", tools=[WEATHER]))
        call = first["choices"][0]["message"]["tool_calls"][0]
        self.clear_upstream()
        messages = [
            {"role": "user", "content": "What is the weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"},
        ]
        raw = self.completion({"model": self.model, "messages": messages, "tools": [WEATHER]})
        eq(raw["choices"][0]["message"].get("content"), self.row.tool_said("18C and sunny"), "content")
        eq(raw["choices"][0].get("finish_reason"), "stop", "finish_reason")
        assert self.row.round_trip_upstream is not None
        self.row.round_trip_upstream(self.upstream_body(), call)

    def tool_round_trip_stream(self) -> None:
        """Round trip the way SDK users write it: append the SDK's own message object, stream the answer."""
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = self.client.chat.completions.create(model=self.model, messages=messages, tools=[WEATHER])
        msg = first.choices[0].message
        expect(msg.tool_calls, f"no tool calls in {msg!r}")
        messages.append(msg)
        for tc in msg.tool_calls:
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": "rainy, 12C"})
        stream = self.client.chat.completions.create(model=self.model, messages=messages, tools=[WEATHER],
                                                     stream=True)
        content = "".join(ch.delta.content or "" for chunk in stream for ch in chunk.choices)
        eq(content, self.row.tool_said("rainy, 12C"), "content")

    def sdk_stream_helper_text(self) -> None:
        deltas = []
        with self.client.chat.completions.stream(
                model=self.model, messages=[{"role": "user", "content": "helper text"}]) as stream:
            for event in stream:
                if event.type == "content.delta":
                    deltas.append(event.delta)
            final = stream.get_final_completion()
        eq("".join(deltas), "Hello! You said: helper text", "content deltas")
        eq(final.choices[0].message.content, "Hello! You said: helper text", "final content")
        eq(final.choices[0].finish_reason, "stop", "final finish_reason")

    def sdk_stream_helper_tools(self) -> None:
        done = []
        with self.client.chat.completions.stream(
                model=self.model, messages=[{"role": "user", "content": "TWO TOOLS weather and time"}],
                tools=[WEATHER, TIME]) as stream:
            for event in stream:
                if event.type == "tool_calls.function.arguments.done":
                    done.append((event.name, event.arguments))
            final = stream.get_final_completion()
        ch = final.choices[0]
        eq(ch.finish_reason, "tool_calls", "final finish_reason")
        calls = [tc.model_dump() for tc in ch.message.tool_calls or []]
        self._check_calls(calls, ["get_weather", "get_time"], [{"city": "Paris"}, {"tz": "Paris"}])
        eq(sorted((n, json.loads(a)) for n, a in done),
           [("get_time", {"tz": "Paris"}), ("get_weather", {"city": "Paris"})], "arguments.done events")

    def params_scalar(self) -> None:
        self.clear_upstream()
        self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "params"}],
            max_tokens=77, stop="END", temperature=1.7, top_p=0.9, user="user-123")
        self.row.params_scalar_upstream(self.upstream_body())

    def params_list(self) -> None:
        self.clear_upstream()
        self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "params"}],
            max_completion_tokens=55, stop=["END", "STOP"], temperature=0.3)
        self.row.params_list_upstream(self.upstream_body())

    def _sdk_error(self, text: str, cls: type[openai.APIStatusError]) -> openai.APIStatusError:
        try:
            self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": text}])
        except openai.APIStatusError as e:
            expect(isinstance(e, cls), f"SDK raised {type(e).__name__} ({e.status_code}), wanted {cls.__name__}")
            return e
        raise Failure(f"SDK raised nothing for {text!r}")

    def error_case(self, case: ErrorCase) -> None:
        e = self._sdk_error(case.trigger, case.sdk)
        eq(e.status_code, case.status, "SDK status")
        eq(e.response.headers.get("retry-after"), case.retry_after, "retry-after header")
        err = check_error_body(self.post(self.body(case.trigger)), case.status, "raw body")
        if case.type is not None:
            eq(err["type"], case.type, "error.type")
        if case.code is not None:
            eq(err["code"], case.code, "error.code")

    def error_garbage(self) -> None:
        check_error_body(self.post(self.body("GARBAGE")), 502, "GARBAGE")
        self._sdk_error("GARBAGE", openai.InternalServerError)

    def error_garbage_stream(self) -> None:
        """A garbage upstream answer to a stream request: a 502 error body, or an in-stream error."""
        rs = self.stream(self.body("GARBAGE"))
        if rs.status != 200:
            eq(rs.status, 502, f"status (body {rs.describe()})")
            return
        expect(not rs.done, f"garbage upstream stream ended with [DONE]:\n{rs.describe()}")
        expect(rs.errors, f"no data: {{\"error\"}} line:\n{rs.describe()}")

    def error_invalid_json(self) -> None:
        r = self.http.post(self.url, content=b'{"model": "x", "messages": [', headers={"content-type": "application/json"})
        check_error_body(r, 400, "invalid JSON body")
        try:
            self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": "x"}],
                                                extra_body={"messages": "not a list"})
        except openai.BadRequestError:
            pass
        except openai.APIStatusError as e:
            raise Failure(f"messages not a list: {type(e).__name__} {e.status_code}, wanted 400") from None
        else:
            raise Failure("messages not a list: accepted (wanted 400)")

    def error_midstream(self) -> None:
        # SDK: the stream starts fine, then the SDK raises while iterating.
        stream = self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "MIDSTREAM ERROR please"}], stream=True)
        got, finish, raised = 0, None, None
        try:
            for chunk in stream:
                got += 1
                for ch in chunk.choices:
                    finish = ch.finish_reason or finish
        except openai.APIError as e:
            raised = e
        expect(raised is not None, f"SDK finished cleanly after {got} chunks (finish_reason {finish!r})")
        expect(got > 0, "no chunk before the error")
        expect(finish is None, f"finish_reason {finish!r} before the error")
        rs = self.stream(self.body("MIDSTREAM ERROR please"))
        eq(rs.status, 200, "raw status")
        expect(not rs.done, f"raw stream has [DONE]:\n{rs.describe()}")
        expect(rs.errors, f"raw stream has no data: {{\"error\": ...}} line:\n{rs.describe()}")
        err = rs.errors[-1]["error"]
        expect(isinstance(err, dict) and isinstance(err.get("message"), str) and isinstance(err.get("type"), str),
               f"error object {short(err)}")
        expect("error" in json.loads(rs.data[-1]), "the error line is not the last data line")
        expect(any(json.loads(d).get("choices") for d in rs.data[:-1]), "no content chunk before the error")

    def error_reset_stream(self) -> None:
        """Upstream resets the connection mid-stream: never a clean finish."""
        rs = self.stream(self.body("RESET now"))
        eq(rs.status, 200, "raw status")
        expect(not rs.done, f"stream ended with [DONE] although upstream reset:\n{rs.describe()}")
        expect(rs.errors or rs.aborted, f"neither an error line nor an aborted stream:\n{rs.describe()}")
        for d in rs.data:
            obj = json.loads(d)
            for ch in obj.get("choices") or []:
                expect(ch.get("finish_reason") is None, f"finish_reason after a reset: {d}")

    def models_list(self) -> None:
        declared = declared_models(self.name)
        # Declared models come first; a mapping with a `models` route then adds what the
        # upstream lists and was not declared (the row's `listed`).
        want = [i for i, _ in declared] + list(self.row.listed)
        if self.row.no_models:
            eq(want, [], f"{self.name}: declared and listed models (the row says there are none)")
        else:
            expect(want, f"{self.name}: neither declared nor listed models")
        page = self.client.models.list()
        eq([m.id for m in page.data], want, "model ids")
        owners = {m.id: m.owned_by for m in page.data}
        for mid, owner in declared:
            eq(owners.get(mid), owner or self.name, f"owned_by of declared {mid}")
        raw = self.http.get(f"{self.base}/models").json()
        eq(raw.get("object"), "list", "object")
        for m in raw["data"]:
            Model.model_validate(m)
            eq(m.get("object"), "model", "data[].object")
            expect(is_int(m.get("created")), f"data[].created {m.get('created')!r}")
            expect(isinstance(m.get("owned_by"), str), f"data[].owned_by {m.get('owned_by')!r}")


# --------------------------------------------------------------------------------------------
# global checks


def global_checks(proxy: str, http: httpx.Client) -> list[tuple[str, Callable[[], None]]]:
    def health() -> None:
        eq(http.get(f"{proxy}/health").status_code, 200, "GET /health status")

    def unknown_path() -> None:
        check_error_body(http.get(f"{proxy}/nope"), 404, "GET /nope")
        check_error_body(http.post(f"{proxy}/nosuchmapping/v1/chat/completions", json={}), 404,
                         "POST /nosuchmapping/v1/chat/completions")
        check_error_body(http.get(f"{proxy}/anthropic/v1/nope"), 404, "GET /anthropic/v1/nope")

    def unknown_path_sdk() -> None:
        client = OpenAI(base_url=f"{proxy}/nosuchmapping/v1", api_key="unused", max_retries=0)
        try:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        except openai.NotFoundError:
            return
        raise Failure("no NotFoundError")

    return [("health", health), ("unknown_path_404", unknown_path), ("unknown_path_sdk", unknown_path_sdk)]



def start_fakes(rows: list["Row"]) -> dict[str, str]:
    """Starts the rows' fake upstreams; gives each row's fake URL. Rows of one provider and key
    share a fake (vertex and vertex-anthropic both read VERTEX_BASE_URL, so Rosetta sends both
    to one); checks run one at a time, so the fake's last request is the current row's."""
    fakes: dict[tuple[str, bool], Proc] = {}
    for row in rows:
        if (row.provider, row.fake_key) in fakes:
            continue
        argv = [FAKE_BIN, "--provider", row.provider, "--listen", "127.0.0.1:0"]
        if row.fake_key:
            argv += ["--api-key", API_KEY]
        fakes[(row.provider, row.fake_key)] = Proc(f"fake-upstream {row.provider}", argv)
    fake_urls = {k: fake.wait_listening() for k, fake in fakes.items()}
    return {row.name: fake_urls[(row.provider, row.fake_key)] for row in rows}

def main() -> int:
    for b in (ROSETTA_BIN, FAKE_BIN):
        if not os.access(b, os.X_OK):
            print(f"FAIL setup: binary {b} not found (build with cargo build --release --workspace)")
            print("0 passed, 1 failed")
            return 1
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rows = []
    for row in ROWS:
        if (Path(MAPPINGS) / f"{row.name}.yaml").is_file():
            rows.append(row)
        else:
            print(f"# SKIP {row.name}: {MAPPINGS}/{row.name}.yaml does not exist", flush=True)
    rosetta = None
    try:
        urls = start_fakes(rows)
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
        env.update({"NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        for row in rows:
            env.update(row.env(urls[row.name]))
        rosetta = Proc("rosetta", [ROSETTA_BIN, "serve", "--mappings", MAPPINGS, "--listen", "127.0.0.1:0"], env)
        proxy = rosetta.wait_listening()
        print(f"# openai {openai.__version__}; rosetta at {proxy}; fakes: "
              + ", ".join(f"{n} {u}" for n, u in urls.items()), flush=True)
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            for name, fn in global_checks(proxy, http):
                run(name, fn)
            for row in rows:
                suite = Suite(row, proxy, urls[row.name], http)
                for check, fn in suite.checks():
                    run(f"{row.name}/{check}", fn)
    except Exception as e:  # noqa: BLE001
        RESULTS.append(("setup", False))
        print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
    finally:
        stop_all()
        shutil.rmtree(KEY_DIR, ignore_errors=True)
    passed = sum(ok for _, ok in RESULTS)
    failed = len(RESULTS) - passed
    if failed and rosetta is not None and os.environ.get("CONFORMANCE_LOG", "1") != "0":
        print("# last rosetta log lines:")
        for line in rosetta.lines[-15:]:
            print(f"#   {line}")
    groups: dict[str, list[bool]] = {}
    for name, ok in RESULTS:
        groups.setdefault(name.split("/", 1)[0] if "/" in name else "(global)", []).append(ok)
    for group, oks in groups.items():
        print(f"# {group}: {sum(oks)} passed, {len(oks) - sum(oks)} failed", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
