#!/usr/bin/env node
// Claude Code (`@anthropic-ai/claude-code`, pinned in package.json) against Rosetta's Messages
// API: one `claude -p PROMPT --output-format json` per shipped chat mapping, with
// ANTHROPIC_BASE_URL at Rosetta's /NAME, a throw-away HOME, telemetry, auto-update and every
// non-essential request off, and only the Bash tool, which `-p` refuses to run without approval.
//
// The fakes call the first declared tool (Bash) with arguments made up from its schema; Claude
// Code refuses to run it (no approval in -p mode) and sends that refusal back as the tool's
// result; the fakes then answer `Tool said: <that result>`. A run passes when Claude Code exits
// 0, its `result` is that answer (for TGI, which has no tools: `Hello! You said: ...` with the
// prompt) and the upstream saw the tool result. Every request is Claude Code's own: streamed,
// `?beta=true`, betas, thinking, cache_control, metadata; a mapping that cannot honour them
// leaves them out (`x-rosetta-dropped`) and answers all the same.
//
// Network: the whole run re-executes itself in a new network namespace that has only loopback
// (`unshare --net`), as tests/codex/run.mjs does; where none can be made it says so.
//
// Prints `PASS claude/NAME` / `FAIL claude/NAME: why` and `N passed, M failed`; exits non-zero on
// any failure. Binaries: $ROSETTA_BIN, $FAKE_UPSTREAM_BIN; mappings: $ROSETTA_MAPPINGS;
// CLAUDE_ONLY=a,b runs some rows. Only processes this script starts are stopped, by PID.
//
// Run: npm ci --prefix tests/claude && node tests/claude/run.mjs

import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..", "..");
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(REPO, "target");
const ROSETTA_BIN = process.env.ROSETTA_BIN || join(TARGET, "release", "rosetta");
const FAKE_BIN = process.env.FAKE_UPSTREAM_BIN || join(TARGET, "release", "fake-upstream");
const MAPPINGS = resolve(process.env.ROSETTA_MAPPINGS || join(REPO, "mappings"));
const CLAUDE = join(HERE, "node_modules", "@anthropic-ai", "claude-code", "bin", "claude.exe");
const ONLY = process.env.CLAUDE_ONLY ? process.env.CLAUDE_ONLY.split(",") : null;

const KEY = "test-key-0123456789abcdef"; // what Rosetta sends upstream; the fakes require it
const STARTUP_MS = 20_000;
const CLAUDE_MS = 120_000; // one `claude -p`
const PROMPT = "List the files in this directory.";

// ---------------------------------------------------------------------------------------------
// a network namespace with only loopback

if (!process.env.ROSETTA_CLAUDE_NETNS) {
  const inner = `ip link set lo up && exec "${process.execPath}" "${fileURLToPath(import.meta.url)}"`;
  const env = { ...process.env, ROSETTA_CLAUDE_NETNS: "1" };
  let why = [];
  for (const args of [["--net"], ["--map-root-user", "--net"]]) {
    const probe = spawnSync("unshare", [...args, "--", "sh", "-c", "ip link set lo up"], { encoding: "utf8" });
    if (probe.status === 0) {
      const r = spawnSync("unshare", [...args, "--", "sh", "-c", inner], { env, stdio: "inherit" });
      process.exit(r.status ?? 1);
    }
    why.push(`unshare ${args.join(" ")}: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()}`);
  }
  console.log(`# note: no loopback-only network namespace (${why.join("; ")}); Claude Code runs in this one`);
  process.env.ROSETTA_CLAUDE_NETNS = "0";
} else if (process.env.ROSETTA_CLAUDE_NETNS === "1") {
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
  { name: "gemini", provider: "gemini", key: true, model: "gemini-2.5-flash", tools: true, said: gemini,
    env: (u) => ({ GEMINI_BASE_URL: u, GEMINI_API_KEY: KEY }) },
  { name: "cohere", provider: "cohere", key: true, model: "command-a-03-2025", tools: true,
    env: (u) => ({ COHERE_BASE_URL: u, COHERE_API_KEY: KEY }) },
  // TGI has no tools; the fake's model has a 4096-token window, which Claude Code's default
  // max_tokens (32000) does not fit: its own setting for smaller models lowers it.
  { name: "tgi", provider: "tgi", key: true, model: "tgi", tools: false,
    claude: { CLAUDE_CODE_MAX_OUTPUT_TOKENS: "1024" },
    env: (u) => ({ TGI_BASE_URL: u, TGI_API_KEY: KEY }) },
];
const ENV_PREFIXES = ["ROSETTA_", "ANTHROPIC_", "OLLAMA_", "AZURE_OPENAI_", "OPENAI_COMPATIBLE_", "GEMINI_",
  "COHERE_", "TGI_", "OPENAI_", "CLAUDE_"];

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
// one claude -p

class Failure extends Error {}
const expect = (cond, msg) => { if (!cond) throw new Failure(msg); };
const show = (v, n = 600) => { const s = JSON.stringify(v); return s.length <= n ? s : `${s.slice(0, n)}...`; };

async function upstream(fake) {
  const r = await fetch(`${fake}/__requests`, { signal: AbortSignal.timeout(5000) });
  return (await r.json()).filter((q) => q.method === "POST").map((q) => q.body);
}

async function claudeRun(row, proxy, fake, tmp) {
  const home = join(tmp, row.name);
  const work = join(home, "work");
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, "hello.txt"), "a file for Claude Code to list\n");
  // Only what Claude Code needs: no keys, proxies or settings from the caller.
  const env = { PATH: process.env.PATH, HOME: home, NO_COLOR: "1", LANG: "C.UTF-8", TMPDIR: tmpdir(),
    ANTHROPIC_BASE_URL: `${proxy}/${row.name}`, ANTHROPIC_API_KEY: "sk-unused-by-rosetta",
    ANTHROPIC_SMALL_FAST_MODEL: row.model, ANTHROPIC_DEFAULT_HAIKU_MODEL: row.model,
    DISABLE_TELEMETRY: "1", DISABLE_AUTOUPDATER: "1", DISABLE_ERROR_REPORTING: "1",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", CLAUDE_CODE_MAX_RETRIES: "0", ...row.claude };
  const argv = [CLAUDE, "-p", PROMPT, "--output-format", "json", "--model", row.model, "--tools", "Bash",
    "--max-turns", "3"];
  const t0 = Date.now();
  const claude = new Proc(`claude ${row.name}`, argv, env, work);
  const timer = setTimeout(() => claude.stop(), CLAUDE_MS);
  const code = await claude.exited;
  clearTimeout(timer);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const why = (msg) => `${msg} (${secs}s)\n# claude stderr:\n${claude.tail(12, claude.err)}\n# claude stdout:\n${claude.tail(12, claude.out)}`;
  expect(code === 0, why(`claude -p exited with ${code}`));
  let out;
  try {
    out = JSON.parse(claude.out.trim().split("\n").pop());
  } catch (e) {
    throw new Failure(why(`stdout is not JSON: ${e.message}`));
  }
  expect(out.is_error === false, why(`is_error: ${show(out)}`));
  const message = String(out.result ?? "").trim();
  const sent = (await upstream(fake)).filter((b) => JSON.stringify(b).includes(PROMPT));
  if (!row.tools) {
    expect(message.startsWith("Hello! You said: ") && message.includes(PROMPT), why(`result ${show(message)}`));
    return `${secs}s, answer ${show(message, 80)}`;
  }
  expect(message.startsWith("Tool said: "), why(`result ${show(message)}`));
  let output = message.slice("Tool said: ".length);
  if (row.said) output = JSON.parse(output).result;
  expect(output.length > 0, why("empty tool output in the answer"));
  expect(sent.length >= 2, why(`${sent.length} upstream requests with the prompt, wanted the call and its result`));
  expect(JSON.stringify(sent[sent.length - 1]).includes(JSON.stringify(output).slice(1, -1).slice(0, 40)),
    why(`the tool result is not in the last upstream request: ${show(sent[sent.length - 1], 1500)}`));
  return `${secs}s, ${out.num_turns} turns, tool result ${show(output, 100)}`;
}

// ---------------------------------------------------------------------------------------------
// main

const results = [];
async function main() {
  for (const bin of [ROSETTA_BIN, FAKE_BIN, CLAUDE]) {
    try {
      accessSync(bin, constants.R_OK);
    } catch {
      console.log(`FAIL setup: ${bin} not found (cargo build --release --workspace; npm ci --prefix tests/claude)`);
      results.push(["setup", false]);
      return;
    }
  }
  const version = spawnSync(CLAUDE, ["--version"], { encoding: "utf8", env: { PATH: process.env.PATH, HOME: tmpdir() } });
  const rows = ROWS.filter((r) => (!ONLY || ONLY.includes(r.name)) && existsSync(join(MAPPINGS, `${r.name}.yaml`)));
  const tmp = mkdtempSync(join(tmpdir(), "rosetta-claude-"));
  try {
    const fakes = rows.map((row) => new Proc(`fake-upstream ${row.provider}`, [FAKE_BIN, "--provider", row.provider,
      "--listen", "127.0.0.1:0", ...(row.key ? ["--api-key", KEY] : [])], { ...process.env, NO_COLOR: "1" }));
    const urls = await Promise.all(fakes.map((f) => f.listening()));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ENV_PREFIXES.some((p) => k.startsWith(p))));
    Object.assign(env, { NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG || "info" });
    rows.forEach((row, i) => Object.assign(env, row.env(urls[i])));
    const rosetta = new Proc("rosetta", [ROSETTA_BIN, "serve", "--mappings", MAPPINGS, "--listen", "127.0.0.1:0",
      "--ledger", "off"], env);
    const proxy = await rosetta.listening();
    console.log(`# claude ${(version.stdout || version.stderr || "?").trim()}, node ${process.version}; rosetta at ${proxy}`);
    for (const [i, row] of rows.entries()) {
      const name = `claude/${row.name}`;
      try {
        const info = await claudeRun(row, proxy, urls[i], tmp);
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
