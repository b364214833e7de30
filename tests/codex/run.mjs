#!/usr/bin/env node
// Codex CLI (`@openai/codex`, pinned in package.json) against Rosetta's Responses API: one
// `codex exec` per shipped mapping, with a custom model provider (`wire_api = "responses"`,
// `base_url` = Rosetta's /NAME/v1) in a temporary CODEX_HOME, Codex's default tools, sandbox
// read-only, approvals never, no session files, every remote feature of Codex turned off.
//
// The fakes call the first declared tool (Codex's command tool) with arguments made up from its
// schema ("Paris" for strings), Codex answers with the tool's output (an error: there is no
// command "Paris"; nothing is written, the sandbox is read-only), and the fakes then answer
// `Tool said: <that output>`. A run passes when Codex exits 0, its last message is that answer
// (for TGI, which has no tools: `Hello! You said: <prompt>`) and the upstream saw the tool call
// and its output.
//
// Network: the whole run (fakes, Rosetta, Codex) re-executes itself in a new network namespace
// that has only loopback (`unshare --net`, as root or with a user namespace), so Codex cannot
// reach anything off this machine whatever it tries. Where no namespace can be made the run goes
// on with a notice (the config still turns off update checks, analytics, plugins, web search).
//
// Prints `PASS name` / `FAIL name: why` per mapping and a final `N passed, M failed`; exits
// non-zero on any failure. Binaries: $ROSETTA_BIN, $FAKE_UPSTREAM_BIN (default
// ${CARGO_TARGET_DIR:-<repo>/target}/release/...); mappings: $ROSETTA_MAPPINGS; CODEX_ONLY=a,b
// runs some rows. Only processes this script starts are stopped, by PID.
//
// Run: npm ci --prefix tests/codex && node tests/codex/run.mjs

import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..", "..");
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(REPO, "target");
const ROSETTA_BIN = process.env.ROSETTA_BIN || join(TARGET, "release", "rosetta");
const FAKE_BIN = process.env.FAKE_UPSTREAM_BIN || join(TARGET, "release", "fake-upstream");
const MAPPINGS = resolve(process.env.ROSETTA_MAPPINGS || join(REPO, "mappings"));
const CODEX_JS = join(HERE, "node_modules", "@openai", "codex", "bin", "codex.js");
const ONLY = process.env.CODEX_ONLY ? process.env.CODEX_ONLY.split(",") : null;

const KEY = "test-key-0123456789abcdef"; // what Rosetta sends upstream; the fakes require it
const STARTUP_MS = 20_000;
const CODEX_MS = 90_000; // one `codex exec`
const PROMPT = "List the files in this directory.";

// ---------------------------------------------------------------------------------------------
// a network namespace with only loopback

if (!process.env.ROSETTA_CODEX_NETNS) {
  const inner = `ip link set lo up && exec "${process.execPath}" "${fileURLToPath(import.meta.url)}"`;
  const env = { ...process.env, ROSETTA_CODEX_NETNS: "1" };
  let why = [];
  for (const args of [["--net"], ["--map-root-user", "--net"]]) {
    const probe = spawnSync("unshare", [...args, "--", "sh", "-c", "ip link set lo up"], { encoding: "utf8" });
    if (probe.status === 0) {
      const r = spawnSync("unshare", [...args, "--", "sh", "-c", inner], { env, stdio: "inherit" });
      process.exit(r.status ?? 1);
    }
    why.push(`unshare ${args.join(" ")}: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()}`);
  }
  console.log(`# note: no loopback-only network namespace (${why.join("; ")}); Codex runs in this one`);
  process.env.ROSETTA_CODEX_NETNS = "0";
} else if (process.env.ROSETTA_CODEX_NETNS === "1") {
  console.log("# in a network namespace with only loopback: nothing off this machine is reachable");
}

// ---------------------------------------------------------------------------------------------
// the mappings

const gemini = (result) => `Tool said: ${JSON.stringify({ result })}`;
const ROWS = [
  { name: "anthropic", provider: "anthropic", key: true, model: "claude-sonnet-4-5", tools: true,
    env: (u) => ({ ANTHROPIC_BASE_URL: u, ANTHROPIC_API_KEY: KEY }) },
  { name: "ollama", provider: "ollama", key: false, model: "llama3.2", tools: true,
    env: (u) => ({ OLLAMA_BASE_URL: u }) },
  { name: "azure", provider: "azure", key: true, model: "gpt-4o", tools: true,
    env: (u) => ({ AZURE_OPENAI_BASE_URL: u, AZURE_OPENAI_API_KEY: KEY }) },
  { name: "openai-compatible", provider: "openai", key: true, model: "gpt-4o-mini", tools: true,
    env: (u) => ({ OPENAI_COMPATIBLE_BASE_URL: `${u}/v1`, OPENAI_COMPATIBLE_API_KEY: KEY }) },
  // The Gemini fake answers with the JSON of the functionResponse ({"result": <output>}).
  { name: "gemini", provider: "gemini", key: true, model: "gemini-2.5-flash", tools: true, said: gemini,
    env: (u) => ({ GEMINI_BASE_URL: u, GEMINI_API_KEY: KEY }) },
  { name: "cohere", provider: "cohere", key: true, model: "command-a-03-2025", tools: true,
    env: (u) => ({ COHERE_BASE_URL: u, COHERE_API_KEY: KEY }) },
  // TGI's native API has no tools: Rosetta leaves Codex's tools out and the fake echoes the prompt.
  { name: "tgi", provider: "tgi", key: true, model: "tgi", tools: false,
    env: (u) => ({ TGI_BASE_URL: u, TGI_API_KEY: KEY }) },
];
const ENV_PREFIXES = ["ROSETTA_", "ANTHROPIC_", "OLLAMA_", "AZURE_OPENAI_", "OPENAI_COMPATIBLE_", "GEMINI_",
  "COHERE_", "TGI_", "OPENAI_", "CODEX_"];

// ---------------------------------------------------------------------------------------------
// processes

const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
const RUNNING = new Set();

class Proc {
  constructor(name, argv, env, cwd = REPO) {
    this.name = name;
    this.out = "";
    this.err = "";
    this.child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    RUNNING.add(this);
    this.exited = new Promise((res) => this.child.once("close", (code, sig) => {
      RUNNING.delete(this);
      res(code ?? sig);
    }));
    this.child.once("error", (e) => { this.err += `[spawn error: ${e.message}]\n`; });
    this.child.stdout.on("data", (b) => { this.out += b.toString("utf8"); });
    this.child.stderr.on("data", (b) => { this.err += b.toString("utf8"); });
  }

  listening() {
    return new Promise((res, rej) => {
      const timer = setInterval(() => {
        const m = LISTENING.exec(this.out + this.err);
        if (m) { clearInterval(timer); res(m[1]); }
      }, 20);
      setTimeout(() => { clearInterval(timer); rej(new Error(`${this.name} did not listen:\n${this.tail()}`)); }, STARTUP_MS);
      this.exited.then((code) => { clearInterval(timer); rej(new Error(`${this.name} exited (${code}):\n${this.tail()}`)); });
    });
  }

  tail(n = 15, text = this.out + this.err) {
    return text.split("\n").filter(Boolean).slice(-n).map((l) => `#   ${l}`).join("\n");
  }

  async stop() {
    if (!RUNNING.has(this)) return;
    this.child.kill("SIGTERM"); // by PID: only what this script started
    const t = setTimeout(() => { if (RUNNING.has(this)) this.child.kill("SIGKILL"); }, 3000);
    await this.exited;
    clearTimeout(t);
  }
}

const stopAll = () => Promise.all([...RUNNING].map((p) => p.stop()));
process.on("exit", () => { for (const p of RUNNING) { try { p.child.kill("SIGKILL"); } catch { /* gone */ } } });
for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]]) {
  process.on(sig, () => { stopAll().finally(() => process.exit(code)); });
}

// ---------------------------------------------------------------------------------------------
// one codex exec

class Failure extends Error {}
const expect = (cond, msg) => { if (!cond) throw new Failure(msg); };
const show = (v, n = 600) => { const s = JSON.stringify(v); return s.length <= n ? s : `${s.slice(0, n)}...`; };

function config(row, proxy) {
  return `# written by tests/codex/run.mjs
model = "${row.model}"
model_provider = "rosetta"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false
web_search = "disabled"

[model_providers.rosetta]
name = "Rosetta"
base_url = "${proxy}/${row.name}/v1"
wire_api = "responses"
env_key = "ROSETTA_CODEX_KEY"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"

[features]
plugins = false
remote_plugin = false
apps = false
remote_models = false
shell_snapshot = false
`;
}

async function upstream(fake) {
  const r = await fetch(`${fake}/__requests`, { signal: AbortSignal.timeout(5000) });
  return (await r.json()).filter((q) => q.method === "POST").map((q) => q.body);
}

async function codexRun(row, proxy, fake, tmp) {
  const home = join(tmp, row.name);
  const work = join(home, "work");
  mkdirSync(join(home, "codex"), { recursive: true });
  mkdirSync(work, { recursive: true });
  writeFileSync(join(home, "codex", "config.toml"), config(row, proxy));
  writeFileSync(join(work, "hello.txt"), "a file for Codex to list\n");
  const last = join(home, "last-message.txt");
  // Only what Codex needs: no provider keys, proxies or Codex settings from the caller.
  const env = { PATH: process.env.PATH, HOME: home, CODEX_HOME: join(home, "codex"), ROSETTA_CODEX_KEY: "unused",
    NO_COLOR: "1", LANG: "C.UTF-8", TMPDIR: tmpdir() };
  const argv = [process.execPath, CODEX_JS, "exec", "--strict-config", "--skip-git-repo-check", "--ephemeral",
    "--sandbox", "read-only", "--color", "never", "--json", "-C", work, "-o", last, PROMPT];
  const t0 = Date.now();
  const codex = new Proc(`codex ${row.name}`, argv, env, work);
  const timer = setTimeout(() => codex.stop(), CODEX_MS);
  const code = await codex.exited;
  clearTimeout(timer);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const why = (msg) => `${msg} (${secs}s)\n# codex stderr:\n${codex.tail(12, codex.err)}\n# codex --json:\n${codex.tail(12, codex.out)}`;
  expect(code === 0, why(`codex exec exited with ${code}`));
  expect(existsSync(last), why("no last message file"));
  const message = readFileSync(last, "utf8").trim();
  const events = codex.out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const sent = await upstream(fake);
  if (!row.tools) {
    expect(message === `Hello! You said: ${PROMPT}`, why(`last message ${show(message)}`));
    expect(sent.length === 1, why(`${sent.length} upstream requests, wanted 1`));
    return `${secs}s, answer ${show(message, 80)}`;
  }
  // Tool call, then the tool's output sent back, then the fake's answer.
  expect(message.startsWith("Tool said: "), why(`last message ${show(message)}`));
  expect(sent.length === 2, why(`${sent.length} upstream requests, wanted 2 (the call, then its output)`));
  let output = message.slice("Tool said: ".length);
  if (row.said) output = JSON.parse(output).result;
  expect(output.length > 0, why("empty tool output in the answer"));
  expect(message === (row.said ? row.said(output) : `Tool said: ${output}`), why(`last message ${show(message)}`));
  // The same output text reached the upstream in the second request (the mapping's tool message).
  expect(JSON.stringify(sent[1]).includes(JSON.stringify(output).slice(1, -1)),
    why(`the tool output is not in the second upstream request: ${show(sent[1], 1500)}`));
  const turn = events.find((e) => e.type === "turn.completed");
  expect(turn, why("no turn.completed event in --json"));
  const tool = events.filter((e) => e.type === "item.completed").map((e) => e.item?.type).filter(Boolean);
  return `${secs}s, items ${show(tool)}, tool output ${show(output, 100)}`;
}

// ---------------------------------------------------------------------------------------------
// main

const results = [];
async function main() {
  for (const bin of [ROSETTA_BIN, FAKE_BIN, CODEX_JS]) {
    try {
      accessSync(bin, constants.R_OK);
    } catch {
      console.log(`FAIL setup: ${bin} not found (cargo build --release --workspace; npm ci --prefix tests/codex)`);
      results.push(["setup", false]);
      return;
    }
  }
  const version = spawnSync(process.execPath, [CODEX_JS, "--version"], { encoding: "utf8" });
  const rows = ROWS.filter((r) => (!ONLY || ONLY.includes(r.name)) && existsSync(join(MAPPINGS, `${r.name}.yaml`)));
  const tmp = mkdtempSync(join(tmpdir(), "rosetta-codex-"));
  try {
    const fakes = rows.map((row) => new Proc(`fake-upstream ${row.provider}`, [FAKE_BIN, "--provider", row.provider,
      "--listen", "127.0.0.1:0", ...(row.key ? ["--api-key", KEY] : [])], { ...process.env, NO_COLOR: "1" }));
    const urls = await Promise.all(fakes.map((f) => f.listening()));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ENV_PREFIXES.some((p) => k.startsWith(p))));
    Object.assign(env, { NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG || "info" });
    rows.forEach((row, i) => Object.assign(env, row.env(urls[i])));
    // Codex sends store: false and its whole history every turn: no ledger needed.
    const rosetta = new Proc("rosetta", [ROSETTA_BIN, "serve", "--mappings", MAPPINGS, "--listen", "127.0.0.1:0",
      "--ledger", "off"], env);
    const proxy = await rosetta.listening();
    console.log(`# ${(version.stdout || version.stderr || "codex ?").trim()}, node ${process.version}; rosetta at ${proxy}`);
    for (const [i, row] of rows.entries()) {
      const name = `codex/${row.name}`;
      try {
        const info = await codexRun(row, proxy, urls[i], tmp);
        results.push([name, true]);
        console.log(`PASS ${name}: ${info}`);
      } catch (e) {
        results.push([name, false]);
        console.log(`FAIL ${name}: ${e instanceof Failure ? e.message : e?.stack ?? e}`);
      }
    }
    if (results.some(([, ok]) => !ok)) {
      console.log("# last rosetta log lines:");
      console.log(rosetta.tail(15));
    }
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  results.push(["setup", false]);
  console.log(`FAIL setup: ${e?.stack ?? e}`);
} finally {
  await stopAll();
}
const passed = results.filter(([, ok]) => ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || passed === 0 ? 1 : 0);
