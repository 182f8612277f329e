/**
 * Reading a training config on the command line: a YAML or JSON file with LLaMA-Factory's keys,
 * then overrides as `llamafactory-cli` takes them (`key=value`) or as `--key value`. What the
 * keys mean and the run they make belong to @webtune/train's planner (`planRun`); this file only
 * reads text and turns the planner's ConfigError into a usage error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { CONFIG_KEYS, ConfigError, planRun, type RawConfig, type RunPlan } from '@webtune/train';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { UsageError } from '../ui.js';

export type { RawConfig };

/** Parses a config file (.yaml / .yml / .json; other names are tried as YAML, which includes JSON). */
export function readConfigFile(path: string): RawConfig {
  if (!existsSync(path)) throw new UsageError(`config file "${path}" does not exist`);
  const text = readFileSync(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(
      `${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) throw new UsageError(`${path} is empty`);
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`${path} must hold a mapping of keys to values (LLaMA-Factory's format)`);
  }
  return parsed as RawConfig;
}

/** Whether a command-line argument names a config file (LLaMA-Factory's: .yaml, .yml or .json). */
export function isConfigPath(argument: string | undefined): argument is string {
  return argument !== undefined && /\.(ya?ml|json)$/i.test(argument) && !argument.startsWith('-');
}

/**
 * Overrides after the config path: `key=value` (as `llamafactory-cli train cfg.yaml key=value`),
 * `--key value` or `--key=value`. Values are read as YAML scalars (`1e-4` a number, `true` a
 * boolean); a `--key` followed by another `--key` or nothing is `true`.
 */
export function parseOverrides(argv: readonly string[]): RawConfig {
  const overrides: RawConfig = {};
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    let key: string;
    let text: string | undefined;
    if (argument.startsWith('--') && argument.length > 2) {
      const body = argument.slice(2);
      const equals = body.indexOf('=');
      if (equals >= 0) {
        key = body.slice(0, equals);
        text = body.slice(equals + 1);
      } else {
        key = body;
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) {
          text = next;
          i++;
        }
      }
    } else if (/^[A-Za-z_][\w.-]*=/.test(argument)) {
      const equals = argument.indexOf('=');
      key = argument.slice(0, equals);
      text = argument.slice(equals + 1);
    } else {
      throw new UsageError(
        `unexpected argument "${argument}"; overrides look like learning_rate=1e-4 or --learning_rate 1e-4`,
      );
    }
    overrides[key.replace(/-/g, '_')] = text === undefined ? true : scalar(text);
  }
  return overrides;
}

function scalar(text: string): unknown {
  try {
    const value = parseYaml(text);
    return value === null && text.trim() !== 'null' && text.trim() !== '~' ? text : value;
  } catch {
    return text;
  }
}

/** The planner's problems as a usage error: one line for one problem, a list for several. */
export function usageErrorOf(error: ConfigError, source?: string): UsageError {
  const where = source ? `${source}: ` : '';
  if (error.issues.length === 1) return new UsageError(`${where}${error.issues[0].message}`);
  return new UsageError(
    `${where}the config has ${error.issues.length} problems:\n${error.issues.map((issue) => `  - ${issue.message}`).join('\n')}`,
  );
}

/** planRun, with its ConfigError as a UsageError. */
export function planOf(raw: RawConfig, source?: string): RunPlan {
  try {
    return planRun(raw);
  } catch (error) {
    if (error instanceof ConfigError) throw usageErrorOf(error, source);
    throw error;
  }
}

/** The config file at `path` with the overrides of `argv` after it, planned. */
export function planFromCommandLine(path: string, argv: readonly string[]): RunPlan {
  return planOf({ ...readConfigFile(path), ...parseOverrides(argv) }, path);
}

/** The config as YAML, grouped by section: given keys (all, or only those) and used defaults. */
export function configToYaml(plan: Pick<RunPlan, 'config' | 'given'>, onlyGiven = false): string {
  const sections = new Map<string, Record<string, unknown>>();
  const config = plan.config as Record<string, unknown>;
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    const value = config[key];
    if (value === undefined) continue;
    if (!plan.given.has(key) && (onlyGiven || spec.status !== 'supported' || value === null)) continue;
    const section = sections.get(spec.section) ?? {};
    // Lists as LLaMA-Factory writes them (comma-separated), so the file reads back in it too.
    section[key] =
      Array.isArray(value) && (spec.type === 'list' || spec.type === 'number-or-list')
        ? value.join(',')
        : value;
    sections.set(spec.section, section);
  }
  const parts: string[] = [];
  for (const [section, entries] of sections) {
    parts.push(`### ${section}\n${stringifyYaml(entries, { lineWidth: 0 }).trimEnd()}`);
  }
  return `${parts.join('\n\n')}\n`;
}
