#!/usr/bin/env node
// Real-client test suite: drives Rosetta with the official `openai` Node SDK and LangChain's
// `ChatOpenAI` (what LibreChat uses for custom endpoints), one row per shipped mapping, each in
// front of its fake upstream (`fake-upstream --provider ...`). The official `@anthropic-ai/sdk`
// drives the Messages API on every row too (messages.mjs).
//
// Prints `PASS name` / `FAIL name: why` per check and a final `N passed, M failed`; exits non-zero
// on any failure. Binaries: $ROSETTA_BIN and $FAKE_UPSTREAM_BIN (default
// ${CARGO_TARGET_DIR:-<repo>/target}/release/...). Mappings: $ROSETTA_MAPPINGS (default
// <repo>/mappings). Only the processes this script starts are stopped, by PID.
//
// Run: npm ci --prefix tests/clients && node tests/clients/run.mjs

import { spawn } from "node:child_process";
import { AsyncLocalStorage } from "node:async_hooks";
import { existsSync, readFileSync, accessSync, constants, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual, inspect } from "node:util";

// ---------------------------------------------------------------------------------------------
// configuration

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..", "..");
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(REPO, "target");
const ROSETTA_BIN = process.env.ROSETTA_BIN || join(TARGET, "release", "rosetta");
const FAKE_BIN = process.env.FAKE_UPSTREAM_BIN || join(TARGET, "release", "fake-upstream");
const MAPPINGS = resolve(process.env.ROSETTA_MAPPINGS || join(REPO, "mappings"));
const ONLY = process.env.CLIENTS_ONLY ? process.env.CLIENTS_ONLY.split(",") : null; // e.g. "anthropic,ollama"

const KEY = "test-key-0123456789abcdef"; // what Rosetta sends upstream; the fakes require it
const STARTUP_MS = 20_000; // a process must print `listening on` within this
const REQUEST_MS = 15_000; // every HTTP request (SDK `timeout`)
const CHECK_MS = 25_000; // a whole check, whatever it awaits

// One row per mapping. `env(url)` is what Rosetta needs to reach the fake at `url`; `baseVar` must
// be read by the mapping (else Rosetta would call the real provider, so the row is refused).
// `model` is used if the mapping declares it (or declares no models); otherwise the first declared
// chat model. `tools`: the fake behind this mapping can call tools. `toolText`: the text the fake
// sends next to a tool call (null: none).
const ROWS = [
  {
    name: "anthropic", provider: "anthropic", key: true, model: "claude-sonnet-4-5", tools: true,
    toolText: "Let me check.", baseVar: "ANTHROPIC_BASE_URL",
    env: (url) => ({ ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: KEY }),
  },
  {
    name: "ollama", provider: "ollama", key: false, model: "llama3.2", tools: true, toolText: null,
    baseVar: "OLLAMA_BASE_URL",
    env: (url) => ({ OLLAMA_BASE_URL: url }),
  },
  {
    name: "azure", provider: "azure", key: true, model: "gpt4o-prod", tools: true, toolText: null,
    baseVar: "AZURE_OPENAI_BASE_URL",
    env: (url) => ({ AZURE_OPENAI_BASE_URL: url, AZURE_OPENAI_API_KEY: KEY }),
  },
  {
    name: "openai-compatible", provider: "openai", key: true, model: "gpt-4o-mini", tools: true,
    toolText: null, baseVar: "OPENAI_COMPATIBLE_BASE_URL",
    env: (url) => ({ OPENAI_COMPATIBLE_BASE_URL: `${url}/v1`, OPENAI_COMPATIBLE_API_KEY: KEY }),
  },
  {
    name: "gemini", provider: "gemini", key: true, model: "gemini-2.5-flash", tools: true, toolText: null,
    baseVar: "GEMINI_BASE_URL",
    // The Gemini fake answers with the JSON of the functionResponse, which the mapping sends as
    // {"result": <tool output>}.
    toolSaid: (result) => `Tool said: ${JSON.stringify({ result })}`,
    env: (url) => ({ GEMINI_BASE_URL: url, GEMINI_API_KEY: KEY }),
  },
  {
    name: "cohere", provider: "cohere", key: true, model: "command-a-03-2025", tools: true, toolText: null,
    baseVar: "COHERE_BASE_URL",
    env: (url) => ({ COHERE_BASE_URL: url, COHERE_API_KEY: KEY }),
  },
  {
    name: "tgi", provider: "tgi", key: true, model: "tgi", tools: false, toolText: null,
    baseVar: "TGI_BASE_URL",
    env: (url) => ({ TGI_BASE_URL: url, TGI_API_KEY: KEY }),
  },
  {
    // The fake verifies each request's Signature Version 4 with KEY as the secret access key.
    name: "bedrock", provider: "bedrock", key: true, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    tools: true, toolText: "Let me check.", baseVar: "BEDROCK_BASE_URL",
    env: (url) => ({
      BEDROCK_BASE_URL: url, AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: KEY,
    }),
  },
  {
    // One Vertex fake serves both publishers and, at /token, the token endpoint whose minted
    // tokens it requires; `prepare` writes the TEST service-account key file it hands out.
    name: "vertex", provider: "vertex", key: false, model: "gemini-2.5-flash", tools: true, toolText: null,
    baseVar: "VERTEX_BASE_URL",
    toolSaid: (result) => `Tool said: ${JSON.stringify({ result })}`,
    prepare: writeVertexKey, env: vertexEnv,
  },
  {
    name: "vertex-anthropic", provider: "vertex", key: false, model: "claude-sonnet-4-5@20250929", tools: true,
    toolText: "Let me check.", baseVar: "VERTEX_BASE_URL", prepare: writeVertexKey, env: vertexEnv,
  },
];
const ENV_PREFIXES = ["ROSETTA_", "ANTHROPIC_", "OLLAMA_", "AZURE_OPENAI_", "OPENAI_COMPATIBLE_", "GEMINI_",
  "COHERE_", "TGI_", "AWS_", "BEDROCK_", "VERTEX_", "GOOGLE_"];

let keyDir = null; // a temporary directory for the Vertex key file, removed at exit
function vertexKeyPath() {
  keyDir ??= mkdtempSync(join(tmpdir(), "rosetta-clients-"));
  return join(keyDir, "vertex-key.json");
}
function vertexEnv(url) {
  return {
    GOOGLE_APPLICATION_CREDENTIALS: vertexKeyPath(), VERTEX_PROJECT: "test-project",
    VERTEX_LOCATION: "us-central1", VERTEX_BASE_URL: url,
  };
}
// The fake's TEST key file names its own /token as token_uri.
async function writeVertexKey(url) {
  const res = await fetch(`${url}/__key_file`);
  if (!res.ok) throw new Error(`GET ${url}/__key_file: ${res.status}`);
  writeFileSync(vertexKeyPath(), await res.text());
}

const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", description: "City name" } },
      required: ["city"],
    },
  },
};
const TIME = {
  type: "function",
  function: {
    name: "get_time",
    description: "Current time in a time zone",
    parameters: { type: "object", properties: { tz: { type: "string" } }, required: ["tz"] },
  },
};
// The fakes fill string properties with "Paris" (testkit `args_from_schema`).
const WEATHER_ARGS = { city: "Paris" };
const TIME_ARGS = { tz: "Paris" };
const said = (text) => `Hello! You said: ${text}`;
// The fakes' answer once a tool result is the last turn (rows may differ: `toolSaid`).
const toolSaid = (row, result) => (row.toolSaid ? row.toolSaid(result) : `Tool said: ${result}`);
// Responses API tools are flat: no nested `function`.
const RESP_WEATHER = {
  type: "function",
  name: "get_weather",
  description: "Current weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string", description: "City name" } },
    required: ["city"],
    additionalProperties: false,
  },
  strict: true,
};

// ---------------------------------------------------------------------------------------------
// network guard and exchange recorder
//
// Every request must stay on this machine. LangChain fetches a tiktoken vocabulary from the web
// to estimate token counts of streamed `invoke` answers; the guard refuses such requests at once
// (LangChain then falls back to an approximate count). Requests to
// loopback are recorded per check, so a failure can show the bytes Rosetta sent.

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const realFetch = globalThis.fetch;
const exchanges = new AsyncLocalStorage();
const blocked = new Set();

globalThis.fetch = async function guardedFetch(input, init = {}) {
  const url = new URL(typeof input === "string" || input instanceof URL ? String(input) : input.url);
  if (!LOOPBACK.has(url.hostname)) {
    blocked.add(url.origin);
    // An error with a 4xx status: LangChain's AsyncCaller gives up at once instead of retrying
    // with backoff (a rejected non-2xx Response would be retried six times).
    throw Object.assign(new Error(`blocked: this suite makes no request off this machine (${url.origin})`),
      { status: 403 });
  }
  const log = exchanges.getStore();
  const entry = {
    method: init.method || (typeof input === "object" && input.method) || "GET",
    url: url.href,
    request: typeof init.body === "string" ? init.body : init.body == null ? "" : `[${typeof init.body} body]`,
    status: null,
    contentType: null,
    response: "",
  };
  log?.push(entry);
  const res = await realFetch(input, init);
  entry.status = res.status;
  entry.contentType = res.headers.get("content-type");
  if (log && res.body) {
    res.clone().text().then(
      (t) => { entry.response = t; },
      (e) => { entry.response += `[read error: ${e?.message ?? e}]`; },
    );
  }
  return res;
};

// LangChain reports the refused tiktoken download on every streamed call; say it once.
const realWarn = console.warn;
let tiktokenNoted = false;
console.warn = (...args) => {
  if (typeof args[0] === "string" && args[0].startsWith("Failed to calculate number of tokens")) {
    if (!tiktokenNoted) {
      tiktokenNoted = true;
      console.log("# note: LangChain's tiktoken download was refused (offline); it uses approximate token estimates");
    }
    return;
  }
  realWarn(...args);
};

// No LangSmith tracing, whatever the caller's environment says.
for (const k of Object.keys(process.env)) {
  if (k.startsWith("LANGSMITH_") || k.startsWith("LANGCHAIN_")) delete process.env[k];
}

// The SDKs are imported after the guard is installed (they read globalThis.fetch when a client is made).
const { default: OpenAI } = await import("openai");
const { ChatOpenAI } = await import("@langchain/openai");
const { HumanMessage, ToolMessage } = await import("@langchain/core/messages");
const messages = await import("./messages.mjs");
const openaiVersion = JSON.parse(readFileSync(join(HERE, "node_modules", "openai", "package.json"), "utf8")).version;
const lcOpenaiVersion = JSON.parse(
  readFileSync(join(HERE, "node_modules", "@langchain", "openai", "package.json"), "utf8")).version;
const lcCoreVersion = JSON.parse(
  readFileSync(join(HERE, "node_modules", "@langchain", "core", "package.json"), "utf8")).version;

// ---------------------------------------------------------------------------------------------
// processes

const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
const RUNNING = new Set();

class Proc {
  constructor(name, argv, env) {
    this.name = name;
    this.lines = [];
    this.child = spawn(argv[0], argv.slice(1), { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    RUNNING.add(this);
    this.exited = new Promise((res) => this.child.once("exit", (code, sig) => {
      RUNNING.delete(this);
      res(code ?? sig);
    }));
    this.child.once("error", (e) => this.lines.push(`[spawn error: ${e.message}]`));
    this.url = new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${name} did not print 'listening on' within ${STARTUP_MS} ms:\n${this.tail()}`)), STARTUP_MS);
      const onData = (buf) => {
        for (const raw of buf.toString("utf8").split(/\r?\n/)) {
          if (!raw) continue;
          const line = raw.replace(ANSI, "");
          this.lines.push(line);
          if (this.lines.length > 500) this.lines.shift();
          const m = LISTENING.exec(line);
          if (m) { clearTimeout(timer); res(m[1]); }
        }
      };
      this.child.stdout.on("data", onData);
      this.child.stderr.on("data", onData);
      this.exited.then((code) => {
        clearTimeout(timer);
        rej(new Error(`${name} exited (${code}) before listening:\n${this.tail()}`));
      });
    });
    this.url.catch(() => {});
  }

  tail(n = 15) {
    return this.lines.slice(-n).map((l) => `#   ${l}`).join("\n");
  }

  async stop() {
    if (!RUNNING.has(this)) return;
    this.child.kill("SIGTERM"); // by PID: only the process this script started
    const t = setTimeout(() => { if (RUNNING.has(this)) this.child.kill("SIGKILL"); }, 3000);
    await this.exited;
    clearTimeout(t);
  }
}

async function stopAll() {
  await Promise.all([...RUNNING].map((p) => p.stop()));
}

process.on("exit", () => {
  for (const p of RUNNING) {
    try { p.child.kill("SIGKILL"); } catch { /* already gone */ }
  }
});
for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
  process.on(sig, () => {
    console.log(`# ${sig}: stopping ${RUNNING.size} process(es)`);
    stopAll().finally(() => process.exit(code));
  });
}

// ---------------------------------------------------------------------------------------------
// checks

class Failure extends Error {}

function expect(cond, msg) {
  if (!cond) throw new Failure(msg);
}

function eq(actual, wanted, what) {
  if (!isDeepStrictEqual(actual, wanted)) {
    throw new Failure(`${what}: expected ${show(wanted)}, got ${show(actual)}`);
  }
}

function show(v, limit = 400) {
  const s = typeof v === "string" ? JSON.stringify(v) : inspect(v, { depth: 6, breakLength: Infinity });
  return s.length <= limit ? s : `${s.slice(0, limit)}...`;
}

function parseJson(s, what) {
  try {
    return JSON.parse(s);
  } catch {
    throw new Failure(`${what} is not JSON: ${show(s)}`);
  }
}

function isCount(v) {
  return Number.isInteger(v) && v >= 0;
}

function checkUsage(u, what) {
  expect(u && typeof u === "object", `${what}: no usage object: ${show(u)}`);
  for (const k of ["prompt_tokens", "completion_tokens", "total_tokens"]) {
    expect(isCount(u[k]), `${what}: usage.${k} is not a count: ${show(u)}`);
  }
  expect(u.completion_tokens > 0, `${what}: usage.completion_tokens is 0: ${show(u)}`);
  eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, `${what}: usage.total_tokens`);
}

function checkCalls(calls, names, args, what) {
  expect(Array.isArray(calls), `${what}: no tool_calls: ${show(calls)}`);
  eq(calls.map((c) => c.function?.name), names, `${what}: tool names`);
  const ids = calls.map((c) => c.id);
  expect(ids.every((i) => typeof i === "string" && i.length > 0), `${what}: tool call ids ${show(ids)}`);
  eq(new Set(ids).size, ids.length, `${what}: distinct tool call ids`);
  calls.forEach((c, i) => {
    eq(c.type, "function", `${what}: tool_calls[${i}].type`);
    expect(typeof c.function.arguments === "string", `${what}: tool_calls[${i}] arguments is not a string`);
    eq(parseJson(c.function.arguments, `${what}: tool_calls[${i}].function.arguments`), args[i],
      `${what}: tool_calls[${i}] parsed arguments`);
  });
}

// A tool call's text next to it: the row's `toolText`, else none (null or "").
function checkToolText(content, row, what) {
  if (row.toolText == null) {
    expect(content == null || content === "", `${what}: content next to the tool call: ${show(content)}`);
  } else {
    eq(content, row.toolText, `${what}: content next to the tool call`);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, rej) => { timer = setTimeout(() => rej(new Failure(`${what} timed out after ${ms} ms`)), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const results = []; // [name, ok]

async function runCheck(name, fn) {
  const log = [];
  try {
    await exchanges.run(log, () => withTimeout(Promise.resolve().then(fn), CHECK_MS, "check"));
    results.push([name, true]);
    console.log(`PASS ${name}`);
  } catch (e) {
    results.push([name, false]);
    const why = e instanceof Failure
      ? e.message
      : `${e?.constructor?.name ?? "Error"}${e?.status ? ` ${e.status}` : ""}: ${e?.message ?? e}${where(e)}`;
    console.log(`FAIL ${name}: ${why}`);
    await new Promise((r) => setTimeout(r, 50)); // let the recorder finish reading bodies
    for (const x of log.slice(-3)) {
      console.log(`#   > ${x.method} ${x.url} ${clip(x.request, 800)}`);
      console.log(`#   < ${x.status} ${x.contentType ?? ""} ${clip(x.response, 1500)}`);
    }
  }
}

function where(e) {
  const line = String(e?.stack ?? "").split("\n").find((l) => l.includes("run.mjs"));
  return line ? ` (${line.trim().replace(/^at /, "at ")})` : "";
}

function clip(s, n) {
  const t = JSON.stringify(s ?? "");
  return t.length <= n ? t : `${t.slice(0, n)}..."`;
}

// ---------------------------------------------------------------------------------------------
// the checks for one mapping

function suite(row, proxy) {
  const baseURL = `${proxy}/${row.name}/v1`;
  const model = row.chosenModel;
  const client = new OpenAI({ baseURL, apiKey: "unused-by-rosetta", maxRetries: 0, timeout: REQUEST_MS });
  const chat = (opts = {}) => new ChatOpenAI({
    model,
    apiKey: "unused-by-rosetta",
    configuration: { baseURL },
    maxRetries: 0,
    timeout: REQUEST_MS,
    ...opts,
  });
  const user = (text) => [{ role: "user", content: text }];

  const checks = [];
  const add = (name, fn) => checks.push([`${row.name}/${name}`, fn]);

  // -- the official openai SDK --

  add("sdk_create", async () => {
    const prompt = "plain create";
    const r = await client.chat.completions.create({ model, messages: user(prompt) });
    expect(typeof r.id === "string" && r.id.length > 0, `id ${show(r.id)}`);
    eq(r.object, "chat.completion", "object");
    expect(typeof r.model === "string" && r.model.length > 0, `model ${show(r.model)}`);
    eq(r.choices.length, 1, "number of choices");
    const ch = r.choices[0];
    eq(ch.index, 0, "choices[0].index");
    eq(ch.message.role, "assistant", "message.role");
    eq(ch.message.content, said(prompt), "message.content");
    eq(ch.finish_reason, "stop", "finish_reason");
    checkUsage(r.usage, "completion");
  });

  add("sdk_create_stream_usage", async () => {
    const prompt = "stream with usage please";
    const stream = await client.chat.completions.create({
      model, messages: user(prompt), stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.length > 0, "no chunks");
    const id = chunks[0].id;
    chunks.forEach((c, i) => {
      eq(c.object, "chat.completion.chunk", `chunk ${i} object`);
      eq(c.id, id, `chunk ${i} id`);
    });
    const withChoices = chunks.map((c, i) => [c, i]).filter(([c]) => c.choices.length > 0).map(([, i]) => i);
    expect(withChoices.length > 0, "no chunk with choices");
    const roles = chunks.flatMap((c, i) => c.choices.filter((ch) => ch.delta?.role != null).map((ch) => [i, ch.delta.role]));
    eq(roles, [[withChoices[0], "assistant"]], "deltas with a role ([chunk, role]; one, in the first chunk)");
    const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? "")).join("");
    eq(content, said(prompt), "concatenated content");
    const finishes = chunks.flatMap((c, i) => c.choices.filter((ch) => ch.finish_reason != null).map((ch) => [i, ch.finish_reason]));
    eq(finishes, [[withChoices.at(-1), "stop"]], "finish reasons ([chunk, reason]; one, in the last chunk with choices)");
    const usage = chunks.map((c, i) => [c, i]).filter(([c]) => c.usage != null);
    eq(usage.map(([, i]) => i), [chunks.length - 1], "usage chunks (one, the last)");
    eq(usage[0][0].choices, [], "usage chunk choices");
    checkUsage(usage[0][0].usage, "usage chunk");
  });

  add("sdk_stream_helper_text", async () => {
    const prompt = "helper text";
    const deltas = [];
    const stream = client.chat.completions.stream({ model, messages: user(prompt) });
    stream.on("content", (delta) => deltas.push(delta));
    const final = await stream.finalChatCompletion();
    eq(deltas.join(""), said(prompt), "content events");
    eq(final.choices.length, 1, "number of choices");
    eq(final.choices[0].message.role, "assistant", "final message.role");
    eq(final.choices[0].message.content, said(prompt), "final content");
    eq(final.choices[0].finish_reason, "stop", "final finish_reason");
  });

  if (row.tools) {
    add("sdk_create_tool", async () => {
      const r = await client.chat.completions.create({ model, messages: user("What is the weather?"), tools: [WEATHER] });
      const ch = r.choices[0];
      eq(ch.finish_reason, "tool_calls", "finish_reason");
      checkToolText(ch.message.content, row, "message");
      checkCalls(ch.message.tool_calls, ["get_weather"], [WEATHER_ARGS], "message");
    });

    add("sdk_stream_helper_tool", async () => {
      const done = [];
      const stream = client.chat.completions.stream({ model, messages: user("Weather in Paris?"), tools: [WEATHER] });
      stream.on("tool_calls.function.arguments.done", (e) => done.push([e.name, e.arguments]));
      const final = await stream.finalChatCompletion();
      const ch = final.choices[0];
      eq(ch.finish_reason, "tool_calls", "final finish_reason");
      checkToolText(ch.message.content, row, "final message");
      checkCalls(ch.message.tool_calls, ["get_weather"], [WEATHER_ARGS], "final message");
      eq(done.map(([n, a]) => [n, parseJson(a, "arguments.done")]), [["get_weather", WEATHER_ARGS]],
        "tool_calls.function.arguments.done events");
    });

    add("sdk_stream_helper_two_tools", async () => {
      const stream = client.chat.completions.stream({
        model, messages: user("TWO TOOLS weather and time"), tools: [WEATHER, TIME],
      });
      const final = await stream.finalChatCompletion();
      const ch = final.choices[0];
      eq(ch.finish_reason, "tool_calls", "final finish_reason");
      checkCalls(ch.message.tool_calls, ["get_weather", "get_time"], [WEATHER_ARGS, TIME_ARGS], "final message");
    });
  }

  // -- LangChain ChatOpenAI --

  add("lc_stream_text", async () => {
    const prompt = "langchain stream";
    let text = "";
    let n = 0;
    let agg;
    for await (const chunk of await chat().stream(prompt)) {
      expect(typeof chunk.content === "string", `chunk content is not a string: ${show(chunk.content)}`);
      text += chunk.content;
      agg = agg ? agg.concat(chunk) : chunk;
      n += 1;
    }
    expect(n > 1, `only ${n} chunk(s)`);
    eq(text, said(prompt), "concatenated chunk content");
    eq(agg.content, said(prompt), "aggregated content");
    const u = agg.usage_metadata;
    expect(u && isCount(u.input_tokens) && isCount(u.output_tokens) && u.output_tokens > 0,
      `aggregated usage_metadata ${show(u)}`);
    eq(u.total_tokens, u.input_tokens + u.output_tokens, "usage_metadata.total_tokens");
  });

  add("lc_invoke_text", async () => {
    const prompt = "langchain invoke";
    const msg = await chat().invoke(prompt);
    eq(msg.content, said(prompt), "content");
    eq(msg.response_metadata?.finish_reason, "stop", "response_metadata.finish_reason");
  });

  if (row.tools) {
    const checkLcCall = (msg, what) => {
      expect(Array.isArray(msg.tool_calls), `${what}: no tool_calls: ${show(msg)}`);
      eq(msg.tool_calls.map((c) => c.name), ["get_weather"], `${what}: tool_calls names`);
      eq(msg.tool_calls[0].args, WEATHER_ARGS, `${what}: tool_calls[0].args`);
      expect(typeof msg.tool_calls[0].id === "string" && msg.tool_calls[0].id, `${what}: tool_calls[0].id ${show(msg.tool_calls[0].id)}`);
      eq(msg.invalid_tool_calls ?? [], [], `${what}: invalid_tool_calls`);
      const text = typeof msg.content === "string" ? msg.content
        : msg.content.filter((p) => p.type === "text").map((p) => p.text).join("");
      eq(text, row.toolText ?? "", `${what}: content next to the tool call`);
    };

    add("lc_invoke_tools", async () => {
      const msg = await chat().bindTools([WEATHER]).invoke("What is the weather?");
      checkLcCall(msg, "AIMessage");
      eq(msg.response_metadata?.finish_reason, "tool_calls", "response_metadata.finish_reason");
    });

    add("lc_invoke_tools_streaming", async () => {
      const msg = await chat({ streaming: true }).bindTools([WEATHER]).invoke("What is the weather?");
      checkLcCall(msg, "AIMessage(Chunk)");
      // Built from the stream, so an AIMessageChunk that keeps the streamed pieces.
      expect(Array.isArray(msg.tool_call_chunks), `no tool_call_chunks on the ${msg.constructor?.name}`);
      eq(msg.tool_call_chunks.map((c) => c.name), ["get_weather"], "tool_call_chunks names");
      eq(parseJson(msg.tool_call_chunks[0].args, "tool_call_chunks[0].args"), WEATHER_ARGS, "tool_call_chunks[0].args");
      eq(msg.response_metadata?.finish_reason, "tool_calls", "response_metadata.finish_reason");
    });

    add("lc_stream_tools", async () => {
      let agg;
      for await (const chunk of await chat({ streaming: true }).bindTools([WEATHER]).stream("Weather, please")) {
        agg = agg ? agg.concat(chunk) : chunk;
      }
      expect(agg, "no chunks");
      eq(agg.tool_call_chunks?.length, 1, "number of aggregated tool_call_chunks");
      const tc = agg.tool_call_chunks[0];
      eq(tc.name, "get_weather", "tool_call_chunks[0].name");
      eq(tc.index, 0, "tool_call_chunks[0].index");
      expect(typeof tc.id === "string" && tc.id, `tool_call_chunks[0].id ${show(tc.id)}`);
      eq(parseJson(tc.args, "tool_call_chunks[0].args"), WEATHER_ARGS, "tool_call_chunks[0].args");
      checkLcCall(agg, "aggregated AIMessageChunk");
    });

    add("lc_stream_two_tools", async () => {
      let agg;
      for await (const chunk of await chat({ streaming: true }).bindTools([WEATHER, TIME]).stream("TWO TOOLS now")) {
        agg = agg ? agg.concat(chunk) : chunk;
      }
      expect(agg, "no chunks");
      eq(agg.tool_calls?.map((c) => [c.name, c.args]), [["get_weather", WEATHER_ARGS], ["get_time", TIME_ARGS]],
        "aggregated tool_calls [name, args]");
      eq(agg.invalid_tool_calls ?? [], [], "invalid_tool_calls");
      const ids = agg.tool_calls.map((c) => c.id);
      expect(ids.every((i) => typeof i === "string" && i) && new Set(ids).size === 2, `tool call ids ${show(ids)}`);
    });

    add("lc_tool_round_trip", async () => {
      // What an agent (LibreChat's included) does: run the tool, send its result back, stream the answer.
      const llm = chat({ streaming: true }).bindTools([WEATHER]);
      const question = new HumanMessage("What is the weather in Paris?");
      const ai = await llm.invoke([question]);
      expect(ai.tool_calls?.length === 1, `no tool call: ${show(ai.tool_calls)}`);
      const result = new ToolMessage({ content: "18C and sunny", tool_call_id: ai.tool_calls[0].id, name: "get_weather" });
      let text = "";
      for await (const chunk of await llm.stream([question, ai, result])) text += chunk.content;
      expect(text.startsWith("Tool said: ") && text.includes("18C and sunny"),
        `answer after the tool result: ${show(text)}`);
    });
  }

  // -- the Responses API (/NAME/v1/responses) --

  const respUsage = (u, what) => {
    expect(u && typeof u === "object", `${what}: no usage: ${show(u)}`);
    for (const k of ["input_tokens", "output_tokens", "total_tokens"]) {
      expect(isCount(u[k]), `${what}: usage.${k} is not a count: ${show(u)}`);
    }
    eq(u.total_tokens, u.input_tokens + u.output_tokens, `${what}: usage.total_tokens`);
    return [u.input_tokens, u.output_tokens, u.total_tokens, u.input_tokens_details?.cached_tokens,
      u.output_tokens_details?.reasoning_tokens];
  };
  const outputTypes = (r) => r.output.map((o) => o.type);
  const oneCall = (r, what) => {
    const calls = r.output.filter((o) => o.type === "function_call");
    eq(calls.map((c) => c.name), ["get_weather"], `${what}: function calls (output ${show(outputTypes(r))})`);
    expect(typeof calls[0].call_id === "string" && calls[0].call_id, `${what}: call_id ${show(calls[0].call_id)}`);
    eq(parseJson(calls[0].arguments, `${what}: arguments`), WEATHER_ARGS, `${what}: parsed arguments`);
    eq(r.status, "completed", `${what}: status`);
    return calls[0];
  };
  // responses.stream(...): its events by type, and finalResponse().
  const respStream = async (params) => {
    const stream = client.responses.stream({ model, ...params });
    const events = [];
    stream.on("event", (e) => events.push(e));
    const final = await stream.finalResponse();
    eq(events[0]?.type, "response.created", "first event");
    eq(events.at(-1)?.type, "response.completed", "last event");
    return { final, events };
  };

  add("resp_create", async () => {
    const prompt = "responses create";
    const r = await client.responses.create({ model, input: prompt });
    eq(r.object, "response", "object");
    eq(r.status, "completed", "status");
    eq(r.output_text, said(prompt), "output_text");
    eq(outputTypes(r), ["message"], "output item types");
    eq(r.output[0].content.map((p) => p.type), ["output_text"], "message content types");
    respUsage(r.usage, "usage");
  });

  add("resp_stream_final_response", async () => {
    const prompt = "responses stream";
    const whole = await client.responses.create({ model, input: prompt });
    const { final, events } = await respStream({ input: prompt });
    const deltas = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    eq(deltas, said(prompt), "output_text.delta events");
    eq(final.output_text, whole.output_text, "finalResponse().output_text vs create");
    eq(outputTypes(final), outputTypes(whole), "output item types vs create");
    eq(respUsage(final.usage, "final"), respUsage(whole.usage, "create"), "usage vs create");
    eq(final.status, "completed", "final status");
  });

  if (row.tools) {
    add("resp_create_tool", async () => {
      oneCall(await client.responses.create({ model, input: "What is the weather?", tools: [RESP_WEATHER] }), "create");
    });

    add("resp_stream_tool_round_trip", async () => {
      const question = { role: "user", content: "What is the weather?" };
      const first = await respStream({ input: [question], tools: [RESP_WEATHER], store: false });
      const call = oneCall(first.final, "first turn");
      const done = first.events.filter((e) => e.type === "response.function_call_arguments.done");
      eq(done.map((e) => parseJson(e.arguments, "arguments.done")), [WEATHER_ARGS], "function_call_arguments.done events");
      // The output items as they came, then the tool's result.
      const input = [question, ...first.final.output,
        { type: "function_call_output", call_id: call.call_id, output: "18C and sunny" }];
      const second = await respStream({ input, tools: [RESP_WEATHER], store: false });
      eq(second.final.output_text, toolSaid(row, "18C and sunny"), "answer after the tool result");
    });
  }

  const lcText = (content) => (typeof content === "string" ? content
    : content.filter((p) => p.type === "text").map((p) => p.text).join(""));

  add("lc_responses_invoke_text", async () => {
    const prompt = "langchain responses invoke";
    const msg = await chat({ useResponsesApi: true }).invoke(prompt);
    eq(lcText(msg.content), said(prompt), "content");
    const u = msg.usage_metadata;
    expect(u && isCount(u.input_tokens) && u.output_tokens > 0, `usage_metadata ${show(u)}`);
    eq(u.total_tokens, u.input_tokens + u.output_tokens, "usage_metadata.total_tokens");
  });

  add("lc_responses_stream_text", async () => {
    const prompt = "langchain responses stream";
    let agg;
    let n = 0;
    for await (const chunk of await chat({ useResponsesApi: true }).stream(prompt)) {
      agg = agg ? agg.concat(chunk) : chunk;
      n += 1;
    }
    expect(n > 1, `only ${n} chunk(s)`);
    eq(lcText(agg.content), said(prompt), "aggregated content");
  });

  if (row.tools) {
    add("lc_responses_tool_round_trip", async () => {
      const llm = chat({ useResponsesApi: true }).bindTools([WEATHER]);
      const question = new HumanMessage("What is the weather in Paris?");
      const ai = await llm.invoke([question]);
      eq(ai.tool_calls?.map((c) => [c.name, c.args]), [["get_weather", WEATHER_ARGS]], "tool_calls [name, args]");
      eq(ai.invalid_tool_calls ?? [], [], "invalid_tool_calls");
      const result = new ToolMessage({ content: "18C and sunny", tool_call_id: ai.tool_calls[0].id, name: "get_weather" });
      let agg;
      for await (const chunk of await llm.stream([question, ai, result])) agg = agg ? agg.concat(chunk) : chunk;
      eq(lcText(agg.content), toolSaid(row, "18C and sunny"), "streamed answer after the tool result");
    });
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------
// mapping files

function mappingInfo(name) {
  const file = join(MAPPINGS, `${name}.yaml`);
  if (!existsSync(file)) return null;
  const text = readFileSync(file, "utf8");
  const vars = new Map(); // name -> has a default
  for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)) {
    vars.set(m[1], vars.get(m[1]) || Boolean(m[2]));
  }
  return { file, vars };
}

// The row's model if `GET /NAME/v1/models` lists it (or lists nothing), else the first listed
// chat model.
async function chooseModel(proxy, row) {
  let ids = [];
  try {
    const r = await fetch(`${proxy}/${row.name}/v1/models`, { signal: AbortSignal.timeout(REQUEST_MS) });
    const body = await r.json();
    ids = Array.isArray(body?.data) ? body.data.map((m) => m.id).filter((id) => typeof id === "string") : [];
  } catch (e) {
    console.log(`# note ${row.name}: GET /${row.name}/v1/models failed (${e?.message ?? e}); using ${row.model}`);
  }
  if (ids.length === 0 || ids.includes(row.model)) return row.model;
  return ids.find((id) => !/embed/i.test(id)) ?? row.model;
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  for (const bin of [ROSETTA_BIN, FAKE_BIN]) {
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      results.push(["setup", false]);
      console.log(`FAIL setup: binary ${bin} not found (build with cargo build --release --workspace)`);
      return;
    }
  }
  const rows = [];
  for (const row of ROWS) {
    if (ONLY && !ONLY.includes(row.name)) continue;
    const info = mappingInfo(row.name);
    if (!info) {
      console.log(`# skip ${row.name}: no ${join(MAPPINGS, `${row.name}.yaml`)}`);
      continue;
    }
    const wanted = Object.keys(row.env("http://127.0.0.1:1"));
    if (!info.vars.has(row.baseVar)) {
      // Without it Rosetta would call the real provider: refuse the row.
      results.push([`${row.name}/config`, false]);
      console.log(`FAIL ${row.name}/config: the mapping does not read \${${row.baseVar}} (it reads ${[...info.vars.keys()].join(", ") || "nothing"})`);
      continue;
    }
    for (const v of wanted) {
      if (!info.vars.has(v)) console.log(`# note ${row.name}: the mapping does not read \${${v}}`);
    }
    for (const [v, hasDefault] of info.vars) {
      if (!hasDefault && !wanted.includes(v)) console.log(`# note ${row.name}: the mapping reads \${${v}}, which this suite leaves unset`);
    }
    rows.push(row);
  }
  if (rows.length === 0) {
    console.log("FAIL setup: no mapping to test");
    results.push(["setup", false]);
    return;
  }

  let rosetta;
  try {
    // Rows of one provider and key share a fake (vertex and vertex-anthropic read one base URL).
    const fakes = new Map();
    for (const row of rows) {
      const k = `${row.provider}/${row.key}`;
      if (!fakes.has(k)) {
        fakes.set(k, new Proc(`fake-upstream ${row.provider}`, [
          FAKE_BIN, "--provider", row.provider, "--listen", "127.0.0.1:0", ...(row.key ? ["--api-key", KEY] : []),
        ], { ...process.env, NO_COLOR: "1" }));
      }
    }
    const urls = await Promise.all(rows.map((row) => fakes.get(`${row.provider}/${row.key}`).url));
    await Promise.all(rows.map((row, i) => row.prepare?.(urls[i])));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ENV_PREFIXES.some((p) => k.startsWith(p))));
    Object.assign(env, { NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG || "info" });
    rows.forEach((row, i) => Object.assign(env, row.env(urls[i])));
    rosetta = new Proc("rosetta", [ROSETTA_BIN, "serve", "--mappings", MAPPINGS, "--listen", "127.0.0.1:0"], env);
    const proxy = await rosetta.url;
    await Promise.all(rows.map(async (row) => { row.chosenModel = await chooseModel(proxy, row); }));
    console.log(`# openai ${openaiVersion}, @anthropic-ai/sdk ${messages.anthropicVersion}, @langchain/openai ${lcOpenaiVersion}, @langchain/core ${lcCoreVersion}, node ${process.version}`);
    console.log(`# rosetta at ${proxy}; ${rows.map((r, i) => `${r.name} (${r.chosenModel}) -> ${urls[i]}`).join("; ")}`);

    // Mappings run side by side; each one's checks one after another, printed together.
    const outputs = await Promise.all(rows.map(async (row) => {
      const lines = []; // this row's output, printed after all rows, so rows do not interleave
      const helpers = { eq, expect, show, said, toolSaid, timeout: REQUEST_MS };
      const all = [...suite(row, proxy), ...messages.checks(row, proxy, helpers)];
      for (const [name, fn] of all) await runCheckCollecting(name, fn, lines);
      return { row, lines };
    }));
    for (const { row, lines } of outputs) {
      for (const l of lines) console.log(l);
      const mine = results.filter(([n]) => n.startsWith(`${row.name}/`));
      console.log(`# ${row.name}: ${mine.filter(([, ok]) => ok).length} passed, ${mine.filter(([, ok]) => !ok).length} failed`);
    }
  } catch (e) {
    results.push(["setup", false]);
    console.log(`FAIL setup: ${e?.message ?? e}`);
  } finally {
    const failed = results.some(([, ok]) => !ok);
    if (failed && rosetta && process.env.CLIENTS_LOG !== "0") {
      console.log("# last rosetta log lines:");
      console.log(rosetta.tail(20));
    }
    await stopAll();
  }
}

// runCheck, but the PASS/FAIL lines go to `lines` (rows run concurrently).
async function runCheckCollecting(name, fn, lines) {
  const out = [];
  const log = (s) => out.push(s);
  await consoleTo(log, () => runCheck(name, fn));
  lines.push(...out);
}

// console.log inside `fn` (and what it awaits) goes to `sink`; elsewhere to stdout.
const consoleSink = new AsyncLocalStorage();
const realLog = console.log;
console.log = (...args) => {
  const sink = consoleSink.getStore();
  const line = args.map((a) => (typeof a === "string" ? a : inspect(a))).join(" ");
  if (sink) sink(line);
  else realLog(line);
};
function consoleTo(sink, fn) {
  return consoleSink.run(sink, fn);
}

try {
  await main();
} catch (e) {
  results.push(["setup", false]);
  console.log(`FAIL setup: ${e?.stack ?? e}`);
} finally {
  await stopAll();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
}
if (blocked.size) console.log(`# refused requests off this machine to: ${[...blocked].join(", ")}`);
const passed = results.filter(([, ok]) => ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || passed === 0 ? 1 : 0);
