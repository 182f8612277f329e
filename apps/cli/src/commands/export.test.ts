import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { adapterFolder } from '../testing/adapter-folder.js';
import { errorLines, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';

describe.skipIf(!requireFixtures(STORIES))('export and chat on stories260K', () => {
  const model = fixturePath(STORIES);
  const work = adapterFolder(model, 'webtune-cli-export-');

  /** `webtune export`: the model with the adapter merged in, written to `out`. */
  const exportMerged = (out: string, ...extra: string[]) =>
    webtune(['export', '--model', model, '--adapter', work.adapter, '--out', out, ...extra]);
  const greedy = (args: string[]) =>
    webtune(['generate', ...args, '--prompt', 'Once upon a time', '--max-new-tokens', '16']);

  it('merges the adapter into a Hugging Face folder that generates what model + adapter do', async () => {
    const out = join(work.folder, 'merged');
    const result = await exportMerged(out);
    expect(result.code).toBe(0);
    for (const file of [
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]) {
      expect(existsSync(join(out, file)), file).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).architectures).toEqual([
      'LlamaForCausalLM',
    ]);
    const merged = await greedy(['--model', out]);
    const adapted = await greedy(['--model', model, '--adapter', work.adapter]);
    const base = await greedy(['--model', model]);
    expect(merged.code).toBe(0);
    expect(merged.stdout).toBe(adapted.stdout);
    expect(merged.stdout).not.toBe(base.stdout);
  });

  it('refuses to overwrite without --force, and shards with --max-shard-size', async () => {
    const out = join(work.folder, 'sharded');
    expect((await exportMerged(out)).code).toBe(0);
    const again = await exportMerged(out, '--max-shard-size', '300KB');
    expect(again.code).toBe(2);
    expect(errorLines(again.stderr)).toEqual([
      expect.stringMatching(/--out ".*sharded" exists and is not empty; add --force to replace it/),
    ]);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    const forced = await exportMerged(out, '--max-shard-size', '300KB', '--force', '--dtype', 'bf16');
    expect(forced.code).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map)).size).toBeGreaterThan(1);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    expect((await greedy(['--model', out])).code).toBe(0);
  });

  it('names a missing adapter folder and a bad size in one line', async () => {
    const missing = await webtune([
      'export',
      '--model',
      model,
      '--adapter',
      join(work.folder, 'none'),
      '--out',
      join(work.folder, 'x'),
    ]);
    expect(missing.code).toBe(1);
    expect(errorLines(missing.stderr)).toEqual([
      expect.stringMatching(/adapter folder ".*none" does not exist/),
    ]);
    const size = await webtune([
      'export',
      '--model',
      model,
      '--out',
      join(work.folder, 'y'),
      '--max-shard-size',
      'big',
    ]);
    expect(size.code).toBe(2);
    expect(errorLines(size.stderr)).toEqual([
      expect.stringMatching(/--max-shard-size must look like 2GB or 500MB/),
    ]);
    expect(existsSync(join(work.folder, 'x'))).toBe(false);
  });

  it('chat reads messages from a pipe, streams answers and compares base with tuned', async () => {
    const single = await webtune(['chat', '--model', model, '--max-new-tokens', '8'], {
      input: 'Tell me a story\n\nWhat did Lily see?\n',
    });
    expect(single.code).toBe(0);
    expect(single.stdout.match(/^assistant> /gm)).toHaveLength(2);
    const compare = await webtune(
      ['chat', '--model', model, '--adapter', work.adapter, '--compare', '--max-new-tokens', '8'],
      { input: 'Tell me a story\n/reset\nHi\n' },
    );
    expect(compare.code).toBe(0);
    const lines = compare.stdout.split('\n');
    const base = lines.filter((l) => l.startsWith('base> '));
    const tuned = lines.filter((l) => l.startsWith('tuned> '));
    expect(base).toHaveLength(2);
    expect(tuned).toHaveLength(2);
    expect(base[0]).not.toBe(tuned[0].replace('tuned>', 'base>'));
    expect(compare.stdout).toContain('(conversation cleared)');
    // The base side answers as the model without the adapter does.
    const alone = await webtune(['chat', '--model', model, '--max-new-tokens', '8'], {
      input: 'Tell me a story\n',
    });
    expect(base[0].slice('base> '.length)).toBe(alone.stdout.split('\n')[0].slice('assistant> '.length));
    const noAdapter = await webtune(['chat', '--model', model, '--compare']);
    expect(noAdapter.code).toBe(2);
    expect(errorLines(noAdapter.stderr)).toEqual([expect.stringMatching(/--compare needs --adapter/)]);
  });

  it('export and chat take a LLaMA-Factory config file and key=value overrides, as llamafactory-cli does', async () => {
    // LLaMA-Factory's examples/merge_lora and examples/inference configs, paths swapped.
    const exportConfig = join(work.folder, 'merge.yaml');
    writeFileSync(
      exportConfig,
      `model_name_or_path: ${model}\nadapter_name_or_path: ${work.adapter}\ntemplate: llama3\ntrust_remote_code: true\nexport_dir: ${join(work.folder, 'unused')}\nexport_size: 5\nexport_device: cpu\nexport_legacy_format: false\n`,
    );
    const out = join(work.folder, 'from-config');
    const exported = await webtune(['export', exportConfig, `export_dir=${out}`]);
    expect(exported.code).toBe(0);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    expect(existsSync(join(work.folder, 'unused'))).toBe(false);
    const chatConfig = join(work.folder, 'inference.yaml');
    writeFileSync(chatConfig, `model_name_or_path: ${out}\ninfer_backend: huggingface\n`);
    const chatted = await webtune(['chat', chatConfig, 'max_new_tokens=8'], { input: 'Tell me a story\n' });
    const alone = await webtune(['chat', '--model', out, '--max-new-tokens', '8'], {
      input: 'Tell me a story\n',
    });
    expect(chatted.code).toBe(0);
    expect(chatted.stdout).toBe(alone.stdout);
    const bad = await webtune(['chat', chatConfig, 'max_new_tokns=8', 'use_galore=true']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/the config has 2 problems:/);
    expect(bad.stderr).toMatch(/did you mean "max_new_tokens"/);
    expect(bad.stderr).toMatch(/use_galore: true is a LLaMA-Factory setting webtune does not support/);
  });
});
