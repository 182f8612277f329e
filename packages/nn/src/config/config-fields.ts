import { ModelError } from '../errors.js';

/** A config.json object (or one of its nested objects). */
export type Json = Record<string, unknown>;

export function positiveInteger(json: Json, key: string, prefix = ''): number {
  const value = json[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ModelError(
      `config.json: ${prefix}${key} must be a positive integer, got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value;
}

export function nonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelError(`config.json: ${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function positiveNumber(json: Json, key: string, fallback: number | undefined, prefix = ''): number {
  const value = json[key];
  if (value == null && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ModelError(
      `config.json: ${prefix}${key} must be a positive number, got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value;
}

/** A positive number, or null when the field is absent or null. */
export function optionalPositiveNumber(json: Json, key: string): number | null {
  return json[key] == null ? null : positiveNumber(json, key, undefined);
}

export function booleanField(json: Json, key: string, fallback: boolean): boolean {
  const value = json[key];
  if (value == null) return fallback;
  if (typeof value !== 'boolean') {
    throw new ModelError(`config.json: ${key} must be true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function tokenId(value: unknown, key: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelError(`config.json: ${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A list of positive numbers (LongRoPE factors). */
export function positiveNumberList(json: Json, key: string, prefix: string): number[] {
  const value = json[key];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'number' || !(v > 0))) {
    throw new ModelError(
      `config.json: ${prefix}${key} must be a list of positive numbers, got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value as number[];
}

export function isObject(value: unknown): value is Json {
  return value != null && typeof value === 'object' && !Array.isArray(value);
}
