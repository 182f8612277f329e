import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { PackedWeight } from '../packed-matmul/packed-weight.js';
import { kernelSource } from '../shared/wgsl.js';
import { decodeMatvec } from './decode-matvec.js';
import { argmaxReduceWgsl, decodeArgmax } from './decode-tokens.js';
import { type HalfOrF32, loadWeight, subgroupsCover } from './product-inputs.js';
import {
  STREAMING_LANES,
  STREAMING_MAX_K,
  STREAMING_MAX_ROWS,
  streamingPrologue,
  streamingRowSums,
} from './streaming-rows-wgsl.js';

/** Rows of x (decode's batch, a prefill's last rows) the streaming head keeps in registers. */
export const STREAMING_HEAD_MAX_ROWS = STREAMING_MAX_ROWS;
/** Largest K the streaming head unrolls. */
export const STREAMING_HEAD_MAX_K = STREAMING_MAX_K;
const HEAD_FIELDS: UniformField[] = [
  /** Rows of this dispatch's part of the head (a chunk's, or the whole vocabulary). */
  { name: 'vocab', type: 'u32' },
  { name: 'block_rows', type: 'u32' },
  /** Blocks of this dispatch, and of every dispatch of the head (candidates per x row). */
  { name: 'blocks', type: 'u32' },
  { name: 'all_blocks', type: 'u32' },
  /** The part's first vocabulary row, and its first block among all_blocks. */
  { name: 'first_row', type: 'u32' },
  { name: 'first_block', type: 'u32' },
  /** Logits per x row (the whole vocabulary). */
  { name: 'out_row', type: 'u32' },
  { name: 'eps', type: 'f32' },
];
/** No index yet (every value of the block was NaN). */
const NONE = 0xffffffff;

export interface DecodeHeadOptions {
  /** [rows, K] f32: the rows' last hidden states. */
  x: Tensor;
  /** [vocab, K]: the head, f32 or a one-chunk f16/bf16 PackedWeight. */
  weight: Tensor | PackedWeight;
  /** The final RMSNorm, folded in (each row's inverse RMS times the gain). */
  norm?: { weight: Tensor; eps: number };
  /** [rows, vocab] f32: the logits. */
  out: Tensor;
  /**
   * Greedy choice of each row (as decodeArgmax: the largest non-NaN value, the lowest index among
   * ties, -1 for a row of NaN) into ids[row] and tokens[at * rows + row].
   */
  argmax?: { ids: Tensor; tokens: Tensor; at: number };
}

/**
 * Why the streaming head does not take this product (null: it does). It needs the tuning's
 * `decodeHeadRows` (the software class), a workgroup of 8 lanes that is one subgroup, f32 or
 * f16/bf16 weights (a half head split over buffers: a dispatch per chunk), K a multiple of 4 up to STREAMING_HEAD_MAX_K, and at most
 * STREAMING_HEAD_MAX_ROWS rows.
 */
export function streamingHeadUnsupported(
  device: Device,
  weight: Tensor | PackedWeight,
  rows: number,
): string | null {
  if (device.tuning.decodeHeadRows < 1) return 'the tuning has no streaming head (decodeHeadRows 0)';
  if (!subgroupsCover(device, STREAMING_LANES)) return `subgroups do not cover ${STREAMING_LANES} lanes`;
  const [, K] = weight.shape;
  if (K % 4 !== 0 || K > STREAMING_HEAD_MAX_K)
    return `K ${K} is not a multiple of 4 up to ${STREAMING_HEAD_MAX_K}`;
  if (rows < 1 || rows > STREAMING_HEAD_MAX_ROWS) return `${rows} rows (at most ${STREAMING_HEAD_MAX_ROWS})`;
  if (weight instanceof PackedWeight) {
    if (weight.format !== 'f16' && weight.format !== 'bf16') return `a ${weight.format} head`;
  } else if (weight.dtype !== 'f32') return `a ${weight.dtype} head`;
  return null;
}

/**
 * The vocabulary head of decoding (and of a prompt's last rows): the final norm folded in, the
 * product with the [vocab, K] head into the logits and, when asked, the greedy choice. Where the
 * streaming head applies (streamingHeadUnsupported), one workgroup of 8 lanes streams
 * `decodeHeadRows` consecutive rows of the table: x's rows are normalised once into registers
 * (the lanes split K in vec4 chunks), each head row is read once (its vec4s contiguous over the
 * lanes), summed with subgroupAdd, and the block's greedy candidate is kept as it goes, so the
 * argmax reads one candidate per block instead of the logits (two dispatches in all). Elsewhere
 * decode's matvec and decodeArgmax, as before.
 */
export function decodeHead(device: Device, options: DecodeHeadOptions): void {
  const { x, weight, norm, out, argmax } = options;
  const [rows, K] = x.shape;
  const [vocab, weightK] = weight.shape;
  if (x.dtype !== 'f32' || weightK !== K || out.shape[0] !== rows || out.shape[1] !== vocab)
    throw new TensorError(
      `decodeHead: x ${x.describe()}, head ${weight.describe()} and out ${out.describe()} do not fit`,
    );
  if (streamingHeadUnsupported(device, weight, rows) !== null) {
    decodeMatvec(device, { x, weights: [weight], ...(norm ? { norm } : {}), epilogue: 'store', out });
    if (argmax) decodeArgmax(device, out, argmax.ids, argmax.tokens, argmax.at);
    return;
  }
  const rowsPerBlock = device.tuning.decodeHeadRows;
  const format: HalfOrF32 = weight instanceof PackedWeight ? (weight.format as HalfOrF32) : 'f32';
  // The parts of the head, each in its own binding: a half head's chunks of rows, or the table.
  const parts =
    weight instanceof PackedWeight
      ? weight.chunks.map((chunk) => ({
          table: chunk.words as Tensor,
          firstRow: chunk.firstRow,
          rows: chunk.rows,
        }))
      : [{ table: weight, firstRow: 0, rows: vocab }];
  const allBlocks = parts.reduce((sum, part) => sum + Math.ceil(part.rows / rowsPerBlock), 0);
  const candidates = argmax ? device.empty([rows, allBlocks, 2], 'u32') : null;
  const shape = { rows, k4: K / 4, norm: !!norm, format, argmax: !!argmax };
  let firstBlock = 0;
  for (const part of parts) {
    const blocks = Math.ceil(part.rows / rowsPerBlock);
    device.dispatch({
      key: `${KERNELS.decode}:head:${format}:${rows}:${K / 4}:${norm ? 'norm' : 'plain'}:${argmax ? 'argmax' : 'logits'}`,
      source: () => streamingHeadSource(shape),
      bindings: [x, ...(norm ? [norm.weight] : []), part.table, out, ...(candidates ? [candidates] : [])],
      uniforms: {
        fields: HEAD_FIELDS,
        values: {
          vocab: part.rows,
          block_rows: rowsPerBlock,
          blocks,
          all_blocks: allBlocks,
          first_row: part.firstRow,
          first_block: firstBlock,
          out_row: vocab,
          eps: norm?.eps ?? 0,
        },
      },
      workgroups: grid(blocks, device.maxWorkgroupsPerDimension),
    });
    firstBlock += blocks;
  }
  if (argmax && candidates) {
    candidatesArgmax(device, candidates, argmax.ids, argmax.tokens, argmax.at);
    candidates.dispose();
  }
}

interface HeadShape {
  rows: number;
  k4: number;
  norm: boolean;
  format: HalfOrF32;
  argmax: boolean;
}

function streamingHeadSource(shape: HeadShape): string {
  const { rows: R, k4, format } = shape;
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  emit('  let block = wid.y * nwg.x + wid.x;');
  emit('  if (block >= params.blocks) { return; }');
  emit('  let first = block * params.block_rows;');
  emit('  let last = min(first + params.block_rows, params.vocab);');
  for (const line of streamingPrologue(R, k4, shape.norm)) emit(line);
  if (shape.argmax) {
    for (let r = 0; r < R; r++) {
      emit(`  var best_${r} = 0.0;`);
      emit(`  var index_${r} = ${NONE}u;`);
    }
  }
  emit('  for (var v = first; v < last; v++) {');
  emit(`    let row = v * ${k4}u;`);
  for (const line of streamingRowSums(R, k4, 'h', 'row', (at) => loadWeight(format, 'w', at))) emit(line);
  for (let r = 0; r < R; r++) {
    emit(`    if (lid.x == 0u) { out[${r}u * params.out_row + params.first_row + v] = total_h_${r}; }`);
    // Rows go in index order: a strictly larger value replaces, so the lowest index wins ties.
    if (shape.argmax)
      emit(
        `    if (total_h_${r} == total_h_${r} && (index_${r} == ${NONE}u || total_h_${r} > best_${r})) { best_${r} = total_h_${r}; index_${r} = params.first_row + v; }`,
      );
  }
  emit('  }');
  if (shape.argmax) {
    emit('  if (lid.x == 0u) {');
    for (let r = 0; r < R; r++) {
      emit(`    let slot_${r} = 2u * (${r}u * params.all_blocks + params.first_block + block);`);
      emit(`    candidates[slot_${r}] = bitcast<u32>(best_${r});`);
      emit(`    candidates[slot_${r} + 1u] = index_${r};`);
    }
    emit('  }');
  }
  const source = kernelSource({
    storage: [
      { name: 'x', type: 'vec4<f32>', access: 'read' },
      ...(shape.norm ? [{ name: 'g', type: 'vec4<f32>' as const, access: 'read' as const }] : []),
      { name: 'w', type: format === 'f32' ? 'vec4<f32>' : 'u32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
      ...(shape.argmax ? [{ name: 'candidates', type: 'u32' as const, access: 'read_write' as const }] : []),
    ],
    uniforms: HEAD_FIELDS,
    workgroupSize: STREAMING_LANES,
    body: lines.join('\n'),
  });
  return `enable subgroups;\n${source}`;
}

const CANDIDATE_LANES = 64;

/**
 * The greedy choice of each row from the streaming head's block candidates ([rows, blocks] of
 * (value bits, index)): the largest value, the lowest index among ties, -1 where every block
 * held only NaN; one workgroup per row.
 */
function candidatesArgmax(device: Device, candidates: Tensor, ids: Tensor, tokens: Tensor, at: number): void {
  const [rows, blocks] = candidates.shape;
  if (ids.size !== rows || ids.dtype !== 'i32' || tokens.dtype !== 'i32' || tokens.size < (at + 1) * rows)
    throw new TensorError(
      `decodeHead: ids ${ids.describe()} or tokens ${tokens.describe()} do not fit step ${at}`,
    );
  const L = CANDIDATE_LANES;
  const fields: UniformField[] = [
    { name: 'blocks', type: 'u32' },
    { name: 'log_offset', type: 'u32' },
  ];
  device.dispatch({
    key: `${KERNELS.decode}:head-argmax`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'candidates', type: 'u32', access: 'read' },
          { name: 'ids', type: 'i32', access: 'read_write' },
          { name: 'tokens', type: 'i32', access: 'read_write' },
        ],
        uniforms: fields,
        workgroupSize: L,
        helpers: `var<workgroup> best_value: array<f32, ${L}>;\nvar<workgroup> best_index: array<u32, ${L}>;`,
        body: `
  let row = wid.x;
  var value = 0.0;
  var index = ${NONE}u;
  for (var b = lid.x; b < params.blocks; b += ${L}u) {
    let at = 2u * (row * params.blocks + b);
    let candidate = candidates[at + 1u];
    let x = bitcast<f32>(candidates[at]);
    if (candidate != ${NONE}u && (index == ${NONE}u || x > value)) { value = x; index = candidate; }
  }
${argmaxReduceWgsl(L)}`,
      }),
    bindings: [candidates, ids, tokens],
    uniforms: { fields, values: { blocks, log_offset: at * rows } },
    workgroups: [rows],
  });
}
