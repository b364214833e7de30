// The Messages API with the official `@anthropic-ai/sdk` for Node, on one mapping: Rosetta's
// `/NAME` is the SDK's base URL, as a user of the SDK (or Claude Code) sets it.
//
// - `messages.create`: a `message` with a `msg_` id, the fake's exact reply, `end_turn`, usage;
// - `messages.stream(...)`: the `text` events and `finalMessage()` (the SDK's accumulator of
//   the event stream) give the same text and output tokens as the non-streamed answer;
// - a tool-use round trip (rows whose fake calls tools): a streamed `tool_use` block with an
//   object `input`, its `tool_result` sent back, the fake's `Tool said: ...` answer;
// - an upstream 429 as the SDK's `RateLimitError` with the dialect's error body;
// - `messages.countTokens`: the anthropic fake's own count where the mapping forwards it (its
//   `count_tokens` route), Rosetta's estimate (characters / 4) everywhere else.
//
// run.mjs adds these checks to every row; `checks(row, proxy, t)` returns `[name, fn]` pairs.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const { default: Anthropic } = await import("@anthropic-ai/sdk");
const HERE = dirname(fileURLToPath(import.meta.url));
export const anthropicVersion = JSON.parse(
  readFileSync(join(HERE, "node_modules", "@anthropic-ai", "sdk", "package.json"), "utf8"),
).version;

const TOOLS = [{
  name: "get_weather",
  description: "Current weather in a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}];

const text = (m) => m.content.filter((b) => b.type === "text").map((b) => b.text).join("");

// `t` holds run.mjs's helpers: eq, expect, show, said, toolSaid, timeout.
export function checks(row, proxy, t) {
  const { eq, expect, show, said, toolSaid } = t;
  const model = row.chosenModel;
  const client = new Anthropic({
    baseURL: `${proxy}/${row.name}`, apiKey: "unused-by-rosetta", maxRetries: 0, timeout: t.timeout,
  });
  const out = [];
  const add = (name, fn) => out.push([`${row.name}/${name}`, fn]);

  add("messages_create", async () => {
    const prompt = "plain message";
    const m = await client.messages.create({ model, max_tokens: 200, messages: [{ role: "user", content: prompt }] });
    expect(typeof m.id === "string" && m.id.startsWith("msg_"), `id ${show(m.id)}`);
    eq(m.type, "message", "type");
    eq(m.role, "assistant", "role");
    eq(m.model, model, "model as the client wrote it");
    eq(text(m), said(prompt), "text");
    eq(m.stop_reason, "end_turn", "stop_reason");
    expect(Number.isInteger(m.usage?.input_tokens) && m.usage.output_tokens > 0, `usage ${show(m.usage)}`);
  });

  add("messages_stream_final_message", async () => {
    const ask = { model, max_tokens: 200, messages: [{ role: "user", content: "a few streamed words" }] };
    const whole = await client.messages.create(ask);
    const stream = client.messages.stream(ask);
    const pieces = [];
    stream.on("text", (delta) => pieces.push(delta));
    const final = await stream.finalMessage();
    expect(pieces.length > 1, `the text arrives in pieces: ${show(pieces)}`);
    eq(pieces.join(""), text(whole), "text events");
    eq(text(final), text(whole), "finalMessage text");
    eq(final.stop_reason, "end_turn", "stop_reason");
    expect(final.id.startsWith("msg_"), `id ${show(final.id)}`);
    eq(final.usage.output_tokens, whole.usage.output_tokens, "output_tokens");
  });

  add("messages_rate_limited", async () => {
    try {
      await client.messages.create({ model, max_tokens: 20, messages: [{ role: "user", content: "FAIL 429" }] });
    } catch (e) {
      expect(e instanceof Anthropic.RateLimitError, `${e?.constructor?.name}: ${e?.message}`);
      eq(e.status, 429, "status");
      eq(e.error?.type, "error", "body type");
      eq(e.error?.error?.type, "rate_limit_error", "error type");
      return;
    }
    throw new Error("FAIL 429: no error");
  });

  add("messages_count_tokens", async () => {
    const ask = { model, system: "Be brief.", messages: [{ role: "user", content: "Hello there, how are you today?" }] };
    const r = await client.messages.countTokens(ask);
    // The anthropic fake counts the words of the JSON of `system` and `messages` (2 + 6); the
    // estimate is 40 characters of text / 4.
    eq(r, { input_tokens: row.name === "anthropic" ? 8 : 10 }, "count");
  });

  if (row.tools) {
    add("messages_tool_round_trip", async () => {
      const messages = [{ role: "user", content: "Weather in Paris?" }];
      const stream = client.messages.stream({
        model, max_tokens: 300, tools: TOOLS, tool_choice: { type: "tool", name: "get_weather" }, messages,
      });
      const first = await stream.finalMessage();
      eq(first.stop_reason, "tool_use", "stop_reason");
      const calls = first.content.filter((b) => b.type === "tool_use");
      eq(calls.length, 1, "tool_use blocks");
      eq(calls[0].name, "get_weather", "tool name");
      eq(calls[0].input, { city: "Paris" }, "tool input (an object)");
      expect(typeof calls[0].id === "string" && calls[0].id.length > 0, `tool id ${show(calls[0].id)}`);
      messages.push(
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: calls[0].id, content: "18C and sunny" }] },
      );
      const answer = await client.messages.create({ model, max_tokens: 300, tools: TOOLS, messages });
      eq(text(answer), toolSaid(row, "18C and sunny"), "answer to the tool result");
      eq(answer.stop_reason, "end_turn", "stop_reason after the tool result");
    });
  }
  return out;
}
