import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Shape } from '../../tensor/shape.js';
import type { Chunk } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS, type KernelName } from '../names.js';
import { forEachChunk } from '../shared/chunks.js';
import { elementwiseGrid, elementwiseLoop } from '../shared/elementwise-loop.js';
import { kernelSource } from '../shared/wgsl.js';
import { checkCounterArgument, dropoutParameters, GENERATOR_WGSL, generatorKeys } from './generator.js';

/** Where a random op starts in the counter stream. */
export interface RandomOptions {
  /** Selects the stream: a non-negative integer below 2^53. */
  seed: number;
  /** Counter of element 0 (element i uses counter offset + i, mod 2^32). Default 0. */
  offset?: number;
}

type Mode = 'bits' | 'uniform' | 'normal' | 'dropout' | 'dropout-mask';

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'base', type: 'u32' as const },
  { name: 'key0', type: 'u32' as const },
  { name: 'key1', type: 'u32' as const },
  { name: 'key2', type: 'u32' as const },
  { name: 'key3', type: 'u32' as const },
  { name: 'threshold', type: 'u32' as const },
  { name: 'first', type: 'f32' as const },
  { name: 'second', type: 'f32' as const },
];

/**
 * WGSL statement for element `index` (counter = params.base + index). `first`/`second` are
 * low/width (uniform), mean/std (normal), scale/unused (dropout).
 */
function statement(mode: Mode, dtype: DType, index: string, withMask: boolean): string {
  const counter = `params.base + ${index}`;
  const store = (value: string) => (dtype === 'f16' ? `f16(${value})` : value);
  switch (mode) {
    case 'bits':
      return `output[${index}] = random_bits(${counter}, 0u);`;
    case 'uniform':
      return `output[${index}] = ${store(`params.first + params.second * unit_from_bits(random_bits(${counter}, 0u))`)};`;
    case 'normal':
      // Box-Muller on the pair (counter >> 1): the even counter takes the cosine, the odd the sine.
      return `{ let position = ${counter}; let pair = position >> 1u;
      let u1 = f32((random_bits(pair, 0u) >> 8u) + 1u) * 5.9604644775390625e-8;
      let angle = 3.14159265358979 * (2.0 * unit_from_bits(random_bits(pair, 1u)) - 1.0);
      let radius = sqrt(-2.0 * log(u1));
      let z = radius * select(cos(angle), sin(angle), (position & 1u) == 1u);
      output[${index}] = ${store('params.first + params.second * z')}; }`;
    case 'dropout':
    case 'dropout-mask': {
      const scale = `let scale = select(0.0, params.first, (random_bits(${counter}, 0u) >> 8u) >= params.threshold);`;
      const lines = [scale];
      if (mode === 'dropout') lines.push(`output[${index}] = ${store(`f32(input[${index}]) * scale`)};`);
      if (withMask) lines.push(`mask[${index}] = ${store('scale')};`);
      return `{ ${lines.join(' ')} }`;
    }
  }
}

interface Launch {
  mode: Mode;
  dtype: DType;
  seed: number;
  offset: number;
  first?: number;
  second?: number;
  threshold?: number;
  input?: Chunk;
  output?: Chunk;
  mask?: Chunk;
  elements: number;
  elementOffset: number;
}

function launch(device: Device, spec: Launch): void {
  const keys = generatorKeys(spec.seed);
  const perInvocation = device.tuning.elementwisePerInvocation;
  const withMask = spec.mask !== undefined;
  const range = (chunk: Chunk) => ({ buffer: chunk.buffer, offset: 0, size: chunk.buffer.size });
  const storage = [
    ...(spec.input ? [{ name: 'input', type: spec.dtype, access: 'read' as const }] : []),
    ...(spec.output
      ? [{ name: 'output', type: spec.mode === 'bits' ? 'u32' : spec.dtype, access: 'read_write' as const }]
      : []),
    ...(spec.mask ? [{ name: 'mask', type: spec.dtype, access: 'read_write' as const }] : []),
  ] as { name: string; type: DType; access: 'read' | 'read_write' }[];
  const name: KernelName = spec.mode.startsWith('dropout') ? KERNELS.dropout : KERNELS.random;
  device.dispatch({
    key: `${name}:${spec.mode}:${spec.dtype}:${withMask ? 'm' : ''}:${perInvocation}`,
    source: () =>
      kernelSource({
        storage,
        uniforms: FIELDS,
        workgroupSize: device.tuning.elementwiseWorkgroup,
        helpers: GENERATOR_WGSL,
        body: elementwiseLoop(perInvocation, (index) => statement(spec.mode, spec.dtype, index, withMask)),
      }),
    bindings: [spec.input, spec.output, spec.mask].filter((c): c is Chunk => c !== undefined).map(range),
    uniforms: {
      fields: FIELDS,
      values: {
        n: spec.elements,
        base: (spec.offset + spec.elementOffset) % 2 ** 32,
        ...keys,
        threshold: spec.threshold ?? 0,
        first: spec.first ?? 0,
        second: spec.second ?? 0,
      },
    },
    workgroups: elementwiseGrid(device, spec.elements, perInvocation),
  });
}

function floatDtype(what: string, dtype: DType): void {
  if (dtype !== 'f32' && dtype !== 'f16') {
    throw new TensorError(`${what}: dtype must be f32 or f16, got ${dtype}`);
  }
}

function checkOptions(what: string, options: RandomOptions): number {
  if (!options || typeof options.seed !== 'number') {
    throw new TensorError(`${what}: options.seed is required (a non-negative integer)`);
  }
  checkCounterArgument(what, 'seed', options.seed);
  const offset = options.offset ?? 0;
  checkCounterArgument(what, 'offset', offset);
  return offset;
}

/** A u32 tensor of raw generator output: element i = bits(seed, offset + i). */
export function randomBits(device: Device, shape: Shape, options: RandomOptions): Tensor<'u32'> {
  const offset = checkOptions('randomBits', options);
  const out = device.empty(shape, 'u32');
  for (const chunk of out.size ? out.chunks : []) {
    launch(device, {
      mode: 'bits',
      dtype: 'u32',
      seed: options.seed,
      offset,
      output: chunk,
      elements: chunk.elements,
      elementOffset: chunk.elementOffset,
    });
  }
  return out;
}

/** Options of randomUniform (rand). */
export interface UniformOptions extends RandomOptions {
  low?: number;
  high?: number;
  dtype?: 'f32' | 'f16';
}

/** Uniform samples in [low, high): low + (high - low) * u, u = (bits >> 8) * 2^-24. */
export function randomUniform(device: Device, shape: Shape, options: UniformOptions): Tensor {
  const offset = checkOptions('rand', options);
  const low = options.low ?? 0;
  const high = options.high ?? 1;
  const dtype = options.dtype ?? 'f32';
  floatDtype('rand', dtype);
  if (!Number.isFinite(low) || !Number.isFinite(high) || high < low) {
    throw new TensorError(`rand: needs finite low <= high, got low ${low} and high ${high}`);
  }
  const out = device.empty(shape, dtype);
  for (const chunk of out.size ? out.chunks : []) {
    launch(device, {
      mode: 'uniform',
      dtype,
      seed: options.seed,
      offset,
      first: low,
      second: high - low,
      output: chunk,
      elements: chunk.elements,
      elementOffset: chunk.elementOffset,
    });
  }
  return out;
}

/** Options of randomNormal (randn). */
export interface NormalOptions extends RandomOptions {
  mean?: number;
  std?: number;
  dtype?: 'f32' | 'f16';
}

/**
 * Normal samples mean + std * z by Box-Muller: counters 2k and 2k+1 share the uniforms
 * u1 = ((bits(k, lane 0) >> 8) + 1) 2^-24 in (0, 1] and u2 = (bits(k, lane 1) >> 8) 2^-24,
 * angle = pi (2 u2 - 1); z = sqrt(-2 ln u1) cos(angle) for the even one, sin(angle) for the odd.
 * |z| <= 5.77 (u1 >= 2^-24).
 */
export function randomNormal(device: Device, shape: Shape, options: NormalOptions): Tensor {
  const offset = checkOptions('randn', options);
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  const dtype = options.dtype ?? 'f32';
  floatDtype('randn', dtype);
  if (!Number.isFinite(mean) || !Number.isFinite(std) || std < 0) {
    throw new TensorError(`randn: needs a finite mean and std >= 0, got mean ${mean} and std ${std}`);
  }
  const out = device.empty(shape, dtype);
  for (const chunk of out.size ? out.chunks : []) {
    launch(device, {
      mode: 'normal',
      dtype,
      seed: options.seed,
      offset,
      first: mean,
      second: std,
      output: chunk,
      elements: chunk.elements,
      elementOffset: chunk.elementOffset,
    });
  }
  return out;
}

/** Options of dropout. */
export interface DropoutOptions extends RandomOptions {
  /** Also write the mask (default true); backward needs it, or can regenerate it with dropoutMask. */
  returnMask?: boolean;
}

/**
 * Dropout: element i is kept when the uniform u of counter offset + i satisfies u >= p, and
 * output = x * keep / (1 - p). The mask holds that factor per element, in the dtype of x
 * (1 / (1 - p) where kept, 0 where dropped), so backward is grad * mask; it is the same for the
 * same (seed, offset) on every device, so it can also be regenerated with dropoutMask. p = 1
 * drops everything (output and mask are 0).
 */
export function dropout(x: Tensor, p: number, options: DropoutOptions): { output: Tensor; mask?: Tensor } {
  x.assertLive();
  const offset = checkOptions('dropout', options);
  floatDtype('dropout', x.dtype);
  const { threshold, scale } = dropoutParameters(p);
  const device = x.device;
  const output = device.empty(x.shape, x.dtype);
  const mask = options.returnMask === false ? undefined : device.empty(x.shape, x.dtype);
  if (output.size > 0) {
    forEachChunk('dropout', mask ? [x, output, mask] : [x, output], ([chunk, outputChunk, maskChunk]) => {
      launch(device, {
        mode: 'dropout',
        dtype: x.dtype,
        seed: options.seed,
        offset,
        threshold,
        first: scale,
        input: chunk,
        output: outputChunk,
        mask: maskChunk,
        elements: chunk.elements,
        elementOffset: chunk.elementOffset,
      });
    });
  }
  return mask ? { output, mask } : { output };
}

/** The mask dropout(x, p, options) uses for a tensor of `shape`, without an input. */
export function dropoutMask(
  device: Device,
  shape: Shape,
  p: number,
  options: RandomOptions & { dtype?: 'f32' | 'f16' },
): Tensor {
  const offset = checkOptions('dropoutMask', options);
  const dtype = options.dtype ?? 'f32';
  floatDtype('dropoutMask', dtype);
  const { threshold, scale } = dropoutParameters(p);
  const mask = device.empty(shape, dtype);
  for (const chunk of mask.size ? mask.chunks : []) {
    launch(device, {
      mode: 'dropout-mask',
      dtype,
      seed: options.seed,
      offset,
      threshold,
      first: scale,
      mask: chunk,
      elements: chunk.elements,
      elementOffset: chunk.elementOffset,
    });
  }
  return mask;
}
