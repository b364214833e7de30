#!/usr/bin/env node
// Validates the LibreChat integration examples against LibreChat's own config schema
// (the `librechat-data-provider` package, pinned in package.json) and against this repo.
//
//   node tests/librechat/validate.mjs [LIBRECHAT_YAML] [COMPOSE_YAML]
//
// Defaults: librechat.yaml.example and docker-compose.override.yml.example at the repo root.
// Exit 0 when both are valid, 1 on any error (every error is printed), 2 on bad usage.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import yaml from 'js-yaml';
import { configSchema, endpointSchema, Constants } from 'librechat-data-provider';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const MAPPINGS = path.join(ROOT, 'mappings');

// The compose service name and port LibreChat reaches Rosetta on.
const ROSETTA_BASE = /^http:\/\/rosetta:8080\/([A-Za-z0-9_-]+)\/v1\/?$/;
// Endpoint names LibreChat does not treat as a plain OpenAI-compatible custom endpoint. The
// agents path lower-cases an unknown provider name and, if it matches one of its own provider
// keys, uses that provider's client instead of the custom endpoint (`Anthropic` would become
// the built-in Anthropic endpoint, `Ollama` the native Ollama client, which Rosetta does not
// speak). Names starting with "ollama" also make the model fetch try Ollama's /api/tags first.
const PROVIDER_NAMES = ['anthropic', 'google', 'bedrock', 'ollama', 'xai', 'deepseek', 'openrouter'];
// LibreChat switches on provider-specific behaviour when these appear in a name or URL.
const SPECIAL_SUBSTRINGS = ['openrouter', 'vercel'];

const args = process.argv.slice(2);
if (args.some((a) => a.startsWith('-')) || args.length > 2) {
  console.error('usage: node validate.mjs [LIBRECHAT_YAML] [COMPOSE_YAML]');
  process.exit(2);
}
const configFile = args[0] ?? path.join(ROOT, 'librechat.yaml.example');
const composeFile = args[1] ?? path.join(ROOT, 'docker-compose.override.yml.example');

/** A path for messages: relative to the repo root when inside it. */
function shown(file) {
  const rel = path.relative(ROOT, path.resolve(file));
  return rel.startsWith('..') ? file : rel;
}

/** `endpoints.custom[2].baseURL` from a zod/JS path array. */
function dotted(parts) {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out || '(top level)';
}

/** Flattens zod issues (union branches included) into `path: message` lines. */
function zodMessages(error, prefix = []) {
  const lines = [];
  for (const issue of error.issues) {
    const where = dotted([...prefix, ...issue.path]);
    if (issue.code === 'invalid_union' && issue.unionErrors?.length) {
      lines.push(`${where}: matches none of the allowed forms:`);
      for (const [i, branch] of issue.unionErrors.entries()) {
        for (const m of zodMessages(branch, prefix)) lines.push(`  form ${i + 1}: ${m}`);
      }
    } else if (issue.code === 'unrecognized_keys') {
      lines.push(`${where}: unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`);
    } else {
      const detail =
        issue.code === 'invalid_type' && issue.received === 'undefined'
          ? `${issue.message} (expected ${issue.expected})`
          : issue.message;
      lines.push(`${where}: ${detail}`);
    }
  }
  return [...new Set(lines)];
}

/** Reads and parses a YAML file; pushes an error and returns undefined on failure. */
function loadYaml(file, errors) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    errors.push(`cannot read: ${e.message}`);
    return undefined;
  }
  try {
    // LibreChat itself reads librechat.yaml with js-yaml's load().
    return yaml.load(text, { filename: file });
  } catch (e) {
    errors.push(`not valid YAML: ${e.message}`);
    return undefined;
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The model ids a mapping file declares under `models:` (strings or `{id: ...}`). */
function declaredModels(file, errors) {
  const own = [];
  const mapping = loadYaml(file, own);
  errors.push(...own.map((e) => `${shown(file)}: ${e}`));
  const list = Array.isArray(mapping?.models) ? mapping.models : [];
  return list.map((m) => (isObject(m) ? m.id : m)).filter((m) => typeof m === 'string');
}

function checkConfig(file) {
  const errors = [];
  const warnings = [];
  const config = loadYaml(file, errors);
  if (errors.length) return { errors, warnings, count: 0 };
  if (!isObject(config)) return { errors: ['the document is not a mapping (object)'], warnings, count: 0 };

  // 1. The whole file, as LibreChat checks it at start-up (it exits on failure).
  const whole = configSchema.strict().safeParse(config);
  if (!whole.success) errors.push(...zodMessages(whole.error));

  if (typeof config.version === 'string' && config.version !== Constants.CONFIG_VERSION) {
    warnings.push(
      `version: ${JSON.stringify(config.version)} is not this librechat-data-provider's ` +
        `CONFIG_VERSION ${JSON.stringify(Constants.CONFIG_VERSION)} (LibreChat only warns about an older one)`,
    );
  }

  // 2. Each custom endpoint, strictly. LibreChat checks these only as `.partial()` and drops
  //    unknown keys silently, so a misspelt option would otherwise pass unnoticed.
  const custom = config?.endpoints?.custom;
  if (!Array.isArray(custom) || custom.length === 0) {
    errors.push('endpoints.custom: expected a non-empty list of custom endpoints');
    return { errors, warnings, count: 0 };
  }
  const names = new Map();
  const usedMappings = new Map();
  for (const [i, entry] of custom.entries()) {
    const at = ['endpoints', 'custom', i];
    const one = endpointSchema.strict().safeParse(entry);
    if (!one.success) errors.push(...zodMessages(one.error, at));
    if (!isObject(entry)) continue;
    const where = (key) => dotted([...at, key]);

    // 3. What LibreChat needs beyond the schema, and what keeps the example in sync with Rosetta.
    const { name, apiKey, baseURL, models, titleModel } = entry;
    if (typeof name === 'string') {
      const lower = name.trim().toLowerCase();
      if (names.has(lower)) errors.push(`${where('name')}: ${JSON.stringify(name)} is also the name of endpoints.custom[${names.get(lower)}]`);
      names.set(lower, i);
      if (PROVIDER_NAMES.includes(lower)) {
        errors.push(`${where('name')}: ${JSON.stringify(name)} is one of LibreChat's provider names; LibreChat would not use it as a custom OpenAI-compatible endpoint`);
      }
      if (name.includes('/')) {
        errors.push(`${where('name')}: LibreChat cannot resolve an endpoint whose name contains "/"`);
      }
      if (lower.startsWith('ollama')) {
        errors.push(`${where('name')}: a name starting with "ollama" makes LibreChat ask for Ollama's native /api/tags, which Rosetta does not serve`);
      }
    }
    for (const [key, value] of [['name', name], ['baseURL', baseURL]]) {
      if (typeof value !== 'string') continue;
      for (const s of SPECIAL_SUBSTRINGS) {
        if (value.toLowerCase().includes(s)) errors.push(`${where(key)}: contains "${s}", which switches on provider-specific behaviour in LibreChat`);
      }
    }
    if (typeof apiKey === 'string' && apiKey.trim() === '') {
      errors.push(`${where('apiKey')}: must not be empty (LibreChat refuses an endpoint without a key; any placeholder works, Rosetta holds the real keys)`);
    }
    if (typeof baseURL === 'string') {
      const match = ROSETTA_BASE.exec(baseURL);
      if (!match) {
        errors.push(`${where('baseURL')}: ${JSON.stringify(baseURL)} is not of the form http://rosetta:8080/NAME/v1`);
      } else {
        const mapping = match[1];
        const mappingFile = path.join(MAPPINGS, `${mapping}.yaml`);
        if (!fs.existsSync(mappingFile)) {
          errors.push(`${where('baseURL')}: names mapping "${mapping}", but ${shown(mappingFile)} does not exist`);
        } else {
          // A mapping that declares models: the default list must use those names.
          const declared = declaredModels(mappingFile, errors);
          const listed = Array.isArray(models?.default) ? models.default : [];
          for (const [j, item] of listed.entries()) {
            const id = isObject(item) ? item.name : item;
            if (declared.length && typeof id === 'string' && !declared.includes(id)) {
              errors.push(`${dotted([...at, 'models', 'default', j])}: ${JSON.stringify(id)} is not a model ${shown(mappingFile)} declares (${declared.join(', ')})`);
            }
          }
        }
        usedMappings.set(mapping, i);
      }
    }
    const defaults = Array.isArray(models?.default)
      ? models.default.map((m) => (isObject(m) ? m.name : m)).filter((m) => typeof m === 'string')
      : [];
    if (typeof titleModel === 'string' && titleModel !== 'current_model' && !defaults.includes(titleModel)) {
      errors.push(`${where('titleModel')}: ${JSON.stringify(titleModel)} is neither "current_model" nor one of models.default`);
    }
  }

  // 4. Every shipped mapping has an endpoint, so a new mapping does not go unmentioned.
  let shipped = [];
  try {
    shipped = fs.readdirSync(MAPPINGS).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5));
  } catch (e) {
    errors.push(`cannot list ${shown(MAPPINGS)}: ${e.message}`);
  }
  for (const mapping of shipped.sort()) {
    if (!usedMappings.has(mapping)) {
      errors.push(`endpoints.custom: no endpoint for the shipped mapping ${shown(path.join(MAPPINGS, mapping + '.yaml'))} (baseURL http://rosetta:8080/${mapping}/v1)`);
    }
  }
  // The whole-file and per-endpoint checks report some mistakes twice: report them once.
  return { errors: [...new Set(errors)], warnings, count: custom.length };
}

function checkCompose(file) {
  const errors = [];
  const doc = loadYaml(file, errors);
  if (errors.length) return { errors };
  const services = doc?.services;
  if (!isObject(services)) return { errors: ['services: missing or not a mapping'] };

  const rosetta = services.rosetta;
  if (!isObject(rosetta)) {
    errors.push('services.rosetta: missing');
  } else {
    if (!rosetta.image && !rosetta.build) errors.push('services.rosetta: needs an image or a build');
    const test = rosetta.healthcheck?.test;
    const testText = Array.isArray(test) ? test.join(' ') : typeof test === 'string' ? test : '';
    if (!/\brosetta\s+health\b/.test(testText)) {
      errors.push(`services.rosetta.healthcheck.test: expected a "rosetta health" command, got ${JSON.stringify(test ?? null)}`);
    }
    const volumes = Array.isArray(rosetta.volumes) ? rosetta.volumes : [];
    const mountsMappings = volumes.some((v) =>
      typeof v === 'string' ? /:\/app\/mappings(:ro)?$/.test(v) : isObject(v) && v.target === '/app/mappings',
    );
    if (!mountsMappings) errors.push('services.rosetta.volumes: expected a mount of a mappings directory at /app/mappings');
    if (rosetta.ports !== undefined) {
      errors.push('services.rosetta.ports: keep Rosetta on the compose network (no published ports) in the example');
    }
  }

  const api = services.api;
  if (!isObject(api)) {
    errors.push('services.api: missing (the override must extend LibreChat\'s api service)');
  } else {
    const condition = isObject(api.depends_on) ? api.depends_on.rosetta?.condition : undefined;
    if (condition !== 'service_healthy') {
      errors.push(`services.api.depends_on.rosetta.condition: expected "service_healthy", got ${JSON.stringify(condition ?? null)}`);
    }
    const volumes = Array.isArray(api.volumes) ? api.volumes : [];
    const mountsConfig = volumes.some((v) =>
      typeof v === 'string' ? /:\/app\/librechat\.yaml(:ro)?$/.test(v) : isObject(v) && v.target === '/app/librechat.yaml',
    );
    if (!mountsConfig) errors.push('services.api.volumes: expected a mount of librechat.yaml at /app/librechat.yaml');
  }
  return { errors };
}

let failed = false;

const config = checkConfig(configFile);
for (const w of config.warnings) console.log(`${shown(configFile)}: warning: ${w}`);
if (config.errors.length) {
  failed = true;
  for (const e of config.errors) console.error(`${shown(configFile)}: ${e}`);
  console.error(`${shown(configFile)}: INVALID (${config.errors.length} error(s))`);
} else {
  console.log(`${shown(configFile)}: valid (${config.count} custom endpoints)`);
}

const compose = checkCompose(composeFile);
if (compose.errors.length) {
  failed = true;
  for (const e of compose.errors) console.error(`${shown(composeFile)}: ${e}`);
  console.error(`${shown(composeFile)}: INVALID (${compose.errors.length} error(s))`);
} else {
  console.log(`${shown(composeFile)}: valid (rosetta service with health check; api waits for it to be healthy)`);
}

process.exit(failed ? 1 : 0);
