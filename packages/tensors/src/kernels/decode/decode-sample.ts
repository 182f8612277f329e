import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';

export interface DecodeSampleOptions {
  /** [rows, vocab] f32 */
  logits: Tensor;
  /**
   * [rows, vocab] u32: nonzero for the ids the repetition penalty applies to (the row's prompt and
   * the tokens chosen so far); the kernel marks the id it chooses. Needed when penalty != 1.
   */
  seen: Tensor;
  /** [steps * rows] f32 uniform draws in [0, 1); step `at` reads draws[at * rows + r]. */
  draws: Tensor;
  /** [rows] i32: the chosen ids (the next step's input). */
  ids: Tensor;
  /** [steps * rows] i32: the log the host reads back; step `at` writes tokens[at * rows + r]. */
  tokens: Tensor;
  at: number;
  /** 0 picks the largest (penalised) logit. */
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

const LANES = 256;

const FIELDS: UniformField[] = [
  { name: 'vocab', type: 'u32' },
  { name: 'chunk', type: 'u32' },
  { name: 'log_offset', type: 'u32' },
  { name: 'greedy', type: 'u32' },
  { name: 'top_k', type: 'u32' },
  { name: 'inverse_temperature', type: 'f32' },
  { name: 'top_p', type: 'f32' },
  { name: 'min_p', type: 'f32' },
  { name: 'penalty', type: 'f32' },
];

/**
 * Chooses the next token of every row on the device, as the host sampler does
 * (generation/sampling.ts in @webtune/nn): repetition penalty, then greedy, or temperature, top-k
 * (ties with the k-th kept), top-p (the smallest most-likely prefix reaching p, ties in index order),
 * min-p, and a draw walked in index order. The k-th value and the top-p cut are found by bisection
 * over the values' bit patterns, so nothing is sorted. Each lane owns a contiguous chunk of the
 * vocabulary, so "index order" holds across lanes. A row holding a NaN gets -1.
 */
export function decodeSample(device: Device, options: DecodeSampleOptions): void {
  const { logits, seen, draws, ids, tokens, at } = options;
  const [rows, vocab] = logits.shape;
  if (seen.size !== rows * vocab || seen.dtype !== 'u32') {
    throw new TensorError(`decodeSample: seen ${seen.describe()} is not [${rows}, ${vocab}] u32`);
  }
  if (draws.size < (at + 1) * rows || tokens.size < (at + 1) * rows || ids.size !== rows) {
    throw new TensorError(
      `decodeSample: draws ${draws.describe()} or tokens ${tokens.describe()} miss step ${at}`,
    );
  }
  device.dispatch({
    key: `${KERNELS.decode}:sample`,
    source: sampleSource,
    bindings: [logits, seen, draws, ids, tokens],
    uniforms: {
      fields: FIELDS,
      values: {
        vocab,
        chunk: Math.ceil(vocab / LANES),
        log_offset: at * rows,
        greedy: options.temperature > 0 ? 0 : 1,
        top_k: options.topK > 0 && options.topK < vocab ? options.topK : 0,
        inverse_temperature: options.temperature > 0 ? 1 / options.temperature : 1,
        top_p: options.topP,
        min_p: options.minP,
        penalty: options.repetitionPenalty,
      },
    },
    workgroups: [rows],
  });
}

function sampleSource(): string {
  const L = LANES;
  const helpers = `
var<workgroup> shared_f: array<f32, ${L}>;
var<workgroup> shared_u: array<u32, ${L}>;
var<workgroup> result: i32;
var<workgroup> total_f: f32;
var<workgroup> total_u: u32;

fn score_of(base: u32, i: u32) -> f32 {
  var value = logits[base + i];
  if (params.penalty != 1.0 && seen[base + i] != 0u) {
    value = select(value / params.penalty, value * params.penalty, value < 0.0);
  }
  return value * params.inverse_temperature;
}

// Floats as u32 keys in the same order (negatives flipped).
fn key_of(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

// Sums over the workgroup, returned as uniform values (every lane gets the same one).
fn sum_f(lane: u32, value: f32) -> f32 {
  workgroupBarrier();
  shared_f[lane] = value;
  workgroupBarrier();
  if (lane == 0u) {
    var total = 0.0;
    for (var i = 0u; i < ${L}u; i++) { total += shared_f[i]; }
    total_f = total;
  }
  return workgroupUniformLoad(&total_f);
}

fn sum_u(lane: u32, value: u32) -> u32 {
  workgroupBarrier();
  shared_u[lane] = value;
  workgroupBarrier();
  if (lane == 0u) {
    var total = 0u;
    for (var i = 0u; i < ${L}u; i++) { total += shared_u[i]; }
    total_u = total;
  }
  return workgroupUniformLoad(&total_u);
}

// Sum of the values of the lanes before this one (their chunks come first in index order).
fn before_f(lane: u32, value: f32) -> f32 {
  workgroupBarrier();
  shared_f[lane] = value;
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < lane; i++) { total += shared_f[i]; }
  return total;
}

fn before_u(lane: u32, value: u32) -> u32 {
  workgroupBarrier();
  shared_u[lane] = value;
  workgroupBarrier();
  var total = 0u;
  for (var i = 0u; i < lane; i++) { total += shared_u[i]; }
  return total;
}`;
  const body = `
  let row = wid.x;
  let lane = lid.x;
  let base = row * params.vocab;
  let start = min(lane * params.chunk, params.vocab);
  let end = min(start + params.chunk, params.vocab);

  // Largest score (lowest index on ties) and NaNs.
  var best = -3.4e38;
  var best_index = 0xffffffffu;
  var nans = 0u;
  for (var i = start; i < end; i++) {
    let s = score_of(base, i);
    // NaN by its bits: a compiler may fold s != s away.
    if ((bitcast<u32>(logits[base + i]) & 0x7fffffffu) > 0x7f800000u) { nans++; } else if (best_index == 0xffffffffu || s > best) { best = s; best_index = i; }
  }
  let any_nan = sum_u(lane, nans);
  workgroupBarrier();
  shared_f[lane] = best;
  shared_u[lane] = best_index;
  workgroupBarrier();
  if (lane == 0u) {
    var value = -3.4e38;
    var index = 0xffffffffu;
    for (var i = 0u; i < ${L}u; i++) {
      if (shared_u[i] != 0xffffffffu && (index == 0xffffffffu || shared_f[i] > value)) { value = shared_f[i]; index = shared_u[i]; }
    }
    total_f = value;
    total_u = index;
  }
  let top = workgroupUniformLoad(&total_f);
  let top_index = workgroupUniformLoad(&total_u);
  var chosen = i32(top_index);
  if (any_nan > 0u || top_index == 0xffffffffu) { chosen = -1; }
  else if (params.greedy == 0u) {
    // Top-k: the largest key x with at least k scores >= x is the k-th largest score.
    var kth = 0u;
    if (params.top_k > 0u) {
      var lo = 0u;
      var hi = 0xffffffffu;
      for (var iteration = 0u; iteration < 33u; iteration++) {
        if (lo >= hi) { break; }
        let mid = lo + ((hi - lo) >> 1u) + ((hi - lo) & 1u);
        var count = 0u;
        for (var i = start; i < end; i++) { if (key_of(score_of(base, i)) >= mid) { count++; } }
        if (sum_u(lane, count) >= params.top_k) { lo = mid; } else { hi = mid - 1u; }
      }
      kth = lo;
    }
    // Weights exp(score - top) of the tokens top-k keeps; the top token's weight is 1.
    var mass = 0.0;
    for (var i = start; i < end; i++) {
      let s = score_of(base, i);
      if (key_of(s) >= kth) { mass += exp(s - top); }
    }
    let total = sum_f(lane, mass);
    // Top-p: v = the largest weight w with mass(weights >= w) >= p total; every weight above v is
    // kept, and the first \`ties\` weights equal to v in index order.
    var cut = 0.0;
    var ties = 0xffffffffu;
    if (params.top_p < 1.0) {
      let goal = params.top_p * total;
      var lo = 0u;
      var hi = bitcast<u32>(1.0);
      for (var iteration = 0u; iteration < 33u; iteration++) {
        if (lo >= hi) { break; }
        let mid = lo + ((hi - lo) >> 1u) + ((hi - lo) & 1u);
        let threshold = bitcast<f32>(mid);
        var part = 0.0;
        for (var i = start; i < end; i++) {
          let s = score_of(base, i);
          let w = exp(s - top);
          if (key_of(s) >= kth && w >= threshold) { part += w; }
        }
        if (sum_f(lane, part) >= goal) { lo = mid; } else { hi = mid - 1u; }
      }
      cut = bitcast<f32>(lo);
      var above = 0.0;
      var equal = 0u;
      for (var i = start; i < end; i++) {
        let s = score_of(base, i);
        let w = exp(s - top);
        if (key_of(s) >= kth) { if (w > cut) { above += w; } else if (w == cut) { equal++; } }
      }
      let mass_above = sum_f(lane, above);
      let all_ties = sum_u(lane, equal);
      let needed = u32(max(ceil((goal - mass_above) / max(cut, 1e-30)), 1.0));
      ties = min(needed, max(all_ties, 1u));
    }
    // The kept weights (top-p ties in index order, then min-p: weight >= min_p of the top one).
    var tie_rank = 0u;
    if (params.top_p < 1.0) {
      var mine = 0u;
      for (var i = start; i < end; i++) {
        let s = score_of(base, i);
        if (key_of(s) >= kth && exp(s - top) == cut) { mine++; }
      }
      tie_rank = before_u(lane, mine);
    }
    var kept_mass = 0.0;
    var rank = tie_rank;
    for (var i = start; i < end; i++) {
      let s = score_of(base, i);
      let w = exp(s - top);
      var keep = key_of(s) >= kth && w >= params.min_p;
      if (params.top_p < 1.0) {
        if (w < cut) { keep = false; }
        else if (w == cut) { keep = keep && rank < ties; rank++; }
      }
      if (keep) { kept_mass += w; }
    }
    let kept_total = sum_f(lane, kept_mass);
    let offset = before_f(lane, kept_mass);
    // The draw, walked in index order: the first token whose running sum passes draw x total.
    let goal_mass = draws[params.log_offset + row] * kept_total;
    if (lane == 0u) { result = -1; }
    workgroupBarrier();
    if (offset <= goal_mass && goal_mass < offset + kept_mass) {
      var running = offset;
      rank = tie_rank;
      for (var i = start; i < end; i++) {
        let s = score_of(base, i);
        let w = exp(s - top);
        var keep = key_of(s) >= kth && w >= params.min_p;
        if (params.top_p < 1.0) {
          if (w < cut) { keep = false; }
          else if (w == cut) { keep = keep && rank < ties; rank++; }
        }
        if (keep) {
          running += w;
          if (goal_mass < running) { result = i32(i); break; }
        }
      }
    }
    workgroupBarrier();
    chosen = workgroupUniformLoad(&result);
    // Rounding left the draw past the last sum: the top token (a kept one).
    if (chosen < 0) { chosen = i32(top_index); }
  }
  if (lane == 0u) {
    ids[row] = chosen;
    tokens[params.log_offset + row] = chosen;
    if (chosen >= 0) { seen[base + u32(chosen)] = 1u; }
  }`;
  return kernelSource({
    storage: [
      { name: 'logits', type: 'f32', access: 'read' },
      { name: 'seen', type: 'u32', access: 'read_write' },
      { name: 'draws', type: 'f32', access: 'read' },
      { name: 'ids', type: 'i32', access: 'read_write' },
      { name: 'tokens', type: 'i32', access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: L,
    helpers,
    body,
  });
}
