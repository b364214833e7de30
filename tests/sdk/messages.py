#!/usr/bin/env python3
"""Messages API clients against Rosetta: the official `anthropic` Python SDK and LangChain's
`ChatAnthropic`, on every shipped chat mapping.

Starts one fake upstream per shipped mapping and one `rosetta serve` in front of them, then
drives `/NAME/v1/messages` with the clients as their users write them:

- `client.messages.create` (text; a tool call whose `tool_use` block has an object `input`);
- `client.messages.stream(...)` + `get_final_message()` (the SDK's accumulator), whose text
  must equal the non-streamed answer's;
- a full tool-use loop: the call, its `tool_result` sent back, the fake's `Tool said: ...`;
- an upstream failure as the SDK's own exception (429 `RateLimitError`, 500
  `InternalServerError`, the anthropic mapping's 529 overloaded);
- LangChain `ChatAnthropic(base_url=Rosetta's /NAME)`: `invoke` answers the fake's reply.

Rows, fakes and processes come from conformance.py (same folder). Prints `PASS name` /
`FAIL name: why` per check and `N passed, M failed`; exits non-zero on any failure.
MESSAGES_ONLY=anthropic,ollama runs some rows.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conformance as c  # noqa: E402
from conformance import Row, eq, expect, short  # noqa: E402

import anthropic  # noqa: E402
from langchain_anthropic import ChatAnthropic  # noqa: E402

TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]


def text(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


class Suite:
    def __init__(self, row: Row, proxy: str) -> None:
        self.row = row
        self.base = f"{proxy}/{row.name}"
        self.client = anthropic.Anthropic(base_url=self.base, api_key="unused", max_retries=0,
                                          timeout=c.HTTP_TIMEOUT)

    def checks(self):
        yield "create", self.create
        yield "stream_final_message", self.stream
        yield "errors", self.errors
        if self.row.tools:
            yield "tool_loop", self.tool_loop
        yield "langchain_chat_anthropic", self.langchain

    def create(self) -> None:
        m = self.client.messages.create(model=self.row.model, max_tokens=200, system="Be brief.",
                                        messages=[{"role": "user", "content": "Hi there"}])
        expect(m.id.startswith("msg_"), f"id {m.id}")
        eq(m.role, "assistant", "role")
        eq(m.stop_reason, "end_turn", "stop_reason")
        expect(text(m).startswith("Hello! You said: "), f"text {short(text(m))}")
        expect(m.usage.output_tokens > 0, f"usage {m.usage}")

    def stream(self) -> None:
        ask = [{"role": "user", "content": "Say a few words please"}]
        whole = self.client.messages.create(model=self.row.model, max_tokens=200, messages=ask)
        with self.client.messages.stream(model=self.row.model, max_tokens=200, messages=ask) as s:
            pieces = list(s.text_stream)
            final = s.get_final_message()
        expect(len(pieces) > 1, f"the text arrives in pieces: {pieces}")
        eq(text(final), text(whole), "streamed text")
        eq("".join(pieces), text(whole), "text_stream")
        eq(final.stop_reason, "end_turn", "stop_reason")
        eq(final.usage.output_tokens, whole.usage.output_tokens, "output_tokens")

    def errors(self) -> None:
        cases = [("FAIL 429", anthropic.RateLimitError, 429), ("FAIL 500", anthropic.InternalServerError, 500)]
        if self.row.name == "anthropic":
            cases.append(("FAIL 529", anthropic.APIStatusError, 529))
        for trigger, kind, status in cases:
            try:
                self.client.messages.create(model=self.row.model, max_tokens=20,
                                            messages=[{"role": "user", "content": trigger}])
            except kind as e:
                expect(isinstance(e.body, dict) and e.body.get("type") == "error", f"body {e.body}")
                eq(e.status_code, status, f"{trigger} status")
                continue
            except anthropic.APIError as e:
                raise c.Failure(f"{trigger}: {type(e).__name__} {e}") from e
            raise c.Failure(f"{trigger}: no error")

    def tool_loop(self) -> None:
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        with self.client.messages.stream(model=self.row.model, max_tokens=300, tools=TOOLS,
                                         tool_choice={"type": "tool", "name": "get_weather"},
                                         messages=messages) as s:
            first = s.get_final_message()
        eq(first.stop_reason, "tool_use", "stop_reason")
        calls = [b for b in first.content if b.type == "tool_use"]
        eq(len(calls), 1, "tool_use blocks")
        expect(isinstance(calls[0].input, dict) and "city" in calls[0].input, f"input {calls[0].input}")
        messages += [{"role": "assistant", "content": first.content},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id,
                                                   "content": "18C and sunny"}]}]
        answer = self.client.messages.create(model=self.row.model, max_tokens=300, tools=TOOLS,
                                             messages=messages)
        eq(text(answer), self.row.tool_said("18C and sunny"), "answer to the tool result")

    def langchain(self) -> None:
        llm = ChatAnthropic(model=self.row.model, base_url=self.base, api_key="unused", max_tokens=100,
                            max_retries=0)
        reply = llm.invoke("Hello from LangChain")
        expect(isinstance(reply.content, str) and reply.content.startswith("Hello! You said: "),
               f"content {short(reply.content)}")


def main() -> int:
    for b in (c.ROSETTA_BIN, c.FAKE_BIN):
        if not os.access(b, os.X_OK):
            print(f"FAIL setup: binary {b} not found (build with cargo build --release --workspace)")
            print("0 passed, 1 failed")
            return 1
    atexit.register(c.stop_all)
    signal.signal(signal.SIGTERM, c.on_signal)
    signal.signal(signal.SIGINT, c.on_signal)
    only = os.environ.get("MESSAGES_ONLY")
    rows = [r for r in c.ROWS if (not only or r.name in only.split(","))
            and (Path(c.MAPPINGS) / f"{r.name}.yaml").is_file()]
    rosetta = None
    try:
        urls = c.start_fakes(rows)
        env = {k: v for k, v in os.environ.items() if not k.startswith(c.ENV_PREFIXES)}
        env.update({"NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        for row in rows:
            env.update(row.env(urls[row.name]))
        rosetta = c.Proc("rosetta", [c.ROSETTA_BIN, "serve", "--mappings", c.MAPPINGS, "--listen",
                                     "127.0.0.1:0", "--ledger", "off"], env)
        proxy = rosetta.wait_listening()
        print(f"# anthropic {anthropic.__version__}; rosetta at {proxy}", flush=True)
        for row in rows:
            for check, fn in Suite(row, proxy).checks():
                c.run(f"{row.name}/{check}", fn)
    except Exception as e:  # noqa: BLE001
        c.RESULTS.append(("setup", False))
        print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
    finally:
        c.stop_all()
    passed = sum(ok for _, ok in c.RESULTS)
    failed = len(c.RESULTS) - passed
    if failed and rosetta is not None:
        print("# last rosetta log lines:")
        for line in rosetta.lines[-15:]:
            print(f"#   {line}")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
