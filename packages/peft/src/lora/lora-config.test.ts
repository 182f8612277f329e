import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bottleneckConfig, parseBottleneckConfig } from '../adapter/adapter-config.js';
import { FIXTURES } from '../testing/models.js';
import { LORA_DEFAULTS, loraConfig, loraConfigToJson, loraScaling, parseLoraConfig } from './lora-config.js';

const fixtureConfig = (name: string) =>
  readFileSync(join(FIXTURES, 'adapters', name, 'adapter_config.json'), 'utf8');

describe('LoRA config (adapter_config.json)', () => {
  it("has PEFT's defaults", () => {
    const config = loraConfig();
    expect(config).toMatchObject({
      r: 8,
      lora_alpha: 8,
      lora_dropout: 0,
      bias: 'none',
      init_lora_weights: true,
    });
    expect(config.target_modules).toBeNull();
    // Configs do not share mutable defaults.
    config.rank_pattern.x = 1;
    expect(LORA_DEFAULTS.rank_pattern).toEqual({});
    expect(loraConfig().rank_pattern).toEqual({});
  });

  it('reads a file written with newer PEFT keys, ignoring the ones it does not know', () => {
    const config = parseLoraConfig(fixtureConfig('lora-regex-patterns'));
    expect(config).toMatchObject({
      r: 4,
      lora_alpha: 6,
      use_rslora: true,
      target_modules: '.*\\.(q_proj|o_proj|down_proj)',
      rank_pattern: { down_proj: 2 },
      lora_dropout: 0.05,
    });
    expect('a_key_from_the_future' in config).toBe(false);
    expect('megatron_config' in config).toBe(false);
    // Written back with PEFT's keys.
    const json = loraConfigToJson(config);
    expect(parseLoraConfig(JSON.stringify(json))).toEqual(config);
    // A minimal file written by an old PEFT: missing keys take the defaults.
    expect(parseLoraConfig({ r: 16, lora_alpha: 32, target_modules: ['q_proj'] })).toMatchObject({
      peft_type: 'LORA',
      r: 16,
      use_dora: false,
      rank_pattern: {},
    });
    // null for a dict or a flag means the default.
    expect(parseLoraConfig({ rank_pattern: null, use_rslora: null }).rank_pattern).toEqual({});
  });

  it('refuses what it does not implement, naming the key', () => {
    expect(() => parseLoraConfig({ bias: 'all' })).toThrow(/bias "all" is not supported/);
    expect(() => parseLoraConfig({ fan_in_fan_out: true })).toThrow(/fan_in_fan_out/);
    expect(() => parseLoraConfig({ lora_bias: true })).toThrow(/lora_bias = true is not supported/);
    expect(() => parseLoraConfig({ layer_replication: [[0, 2]] })).toThrow(/layer_replication/);
    expect(() => parseLoraConfig({ target_parameters: ['experts.w1'] })).toThrow(/target_parameters/);
    expect(() => parseLoraConfig({ init_lora_weights: 'olora' })).toThrow(/init_lora_weights "olora"/);
    expect(() => parseLoraConfig({ peft_type: 'IA3' })).toThrow(/not LORA/);
    expect(() => parseLoraConfig('{ not json')).toThrow(/not valid JSON/);
    expect(() => parseLoraConfig({ r: 0 })).toThrow(/r must be a positive integer/);
    expect(() => parseLoraConfig({ r: 2.5 })).toThrow(/r must be a positive integer/);
    expect(() => parseLoraConfig({ lora_dropout: 1 })).toThrow(/lora_dropout/);
    expect(() => parseLoraConfig({ rank_pattern: { q_proj: -1 } })).toThrow(/rank_pattern\["q_proj"\]/);
    expect(() => parseLoraConfig({ target_modules: '.*', layers_to_transform: [0] })).toThrow(
      /layers_to_transform/,
    );
    expect(() => parseLoraConfig({ target_modules: [1, 2] })).toThrow(/target_modules/);
  });

  it('scales by alpha / r, or alpha / sqrt(r) with rsLoRA', () => {
    expect(loraScaling(8, 16, false)).toBe(2);
    expect(loraScaling(16, 16, true)).toBe(4);
  });
});

describe('bottleneck adapter config', () => {
  it('has defaults, validates, and reads its own files', () => {
    expect(bottleneckConfig()).toMatchObject({
      bottleneck_size: 64,
      non_linearity: 'relu',
      target_modules: ['self_attn', 'mlp'],
    });
    expect(() => bottleneckConfig({ bottleneck_size: 0 })).toThrow(/bottleneck_size/);
    expect(() => bottleneckConfig({ non_linearity: 'softmax' as never })).toThrow(/non_linearity "softmax"/);
    expect(
      parseBottleneckConfig({ peft_type: 'BOTTLENECK', adapter_size: 16, extra: 1 }).bottleneck_size,
    ).toBe(16);
  });
});
