import { TensorError } from '../../device/errors.js';
import type { BufferRange, Chunk } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';

/*
 * Chunking, in one place. A tensor larger than one storage binding is split in chunks of whole
 * rows (tensor/storage.ts). Kernels either work chunk by chunk over tensors split the same way
 * (forEachChunk), or, for matmul, find the chunk of a row and cut their work at chunk boundaries
 * (chunkOfRow, rowCuts, segments). Each binds a chunk with chunkRange.
 */

/**
 * The binding of one chunk: with `bytesPerElement`, its elements rounded up to 16 bytes (so vec4
 * views fit), never past the buffer (pooled buffers may be larger than the chunk); without, the
 * whole buffer.
 */
export function chunkRange(
  chunk: { buffer: GPUBuffer; elements: number },
  bytesPerElement?: number,
): BufferRange {
  if (bytesPerElement === undefined) return { buffer: chunk.buffer, offset: 0, size: chunk.buffer.size };
  const bytes = Math.max(16, Math.ceil((chunk.elements * bytesPerElement) / 16) * 16);
  return { buffer: chunk.buffer, offset: 0, size: Math.min(bytes, chunk.buffer.size) };
}

/**
 * Calls `run` once per chunk with the matching chunk of every tensor (in the order given), after
 * checking that all of them are split at the same elements: an elementwise or row-wise kernel
 * over tensors of one shape and one element size. Throws naming `op` and the tensor that differs.
 */
export function forEachChunk(
  op: string,
  tensors: readonly Tensor[],
  run: (chunks: Chunk[], index: number) => void,
  names: readonly string[] = [],
): void {
  const [first, ...others] = tensors;
  const reference = first.chunks;
  others.forEach((tensor, i) => {
    const chunks = tensor.chunks;
    const same =
      chunks.length === reference.length &&
      chunks.every(
        (c, j) => c.elementOffset === reference[j].elementOffset && c.elements === reference[j].elements,
      );
    if (!same) {
      const name = names[i + 1] ? `${names[i + 1]} ` : '';
      const firstName = names[0] ? `${names[0]} ` : '';
      throw new TensorError(
        `${op}: ${name}${tensor.describe()} is split in ${chunks.length} chunks differently from ${firstName}${first.describe()} (${reference.length} chunks)`,
      );
    }
  });
  reference.forEach((_, index) => {
    run(
      tensors.map((t) => t.chunks[index]),
      index,
    );
  });
}

/** The chunk holding row `row` of a tensor whose rows have `rowLength` elements. */
export function chunkOfRow(
  op: string,
  tensor: Tensor,
  rowLength: number,
  row: number,
): { chunk: Chunk; firstRow: number } {
  // One chunk holds every row, also when rows are empty (length 0).
  if (tensor.chunks.length === 1) return { chunk: tensor.chunks[0], firstRow: 0 };
  const element = row * rowLength;
  const chunk = tensor.chunks.find(
    (c) => element >= c.elementOffset && element < c.elementOffset + c.elements,
  );
  if (!chunk) throw new TensorError(`${op}: row ${row} lies outside ${tensor.describe()}`);
  return { chunk, firstRow: chunk.elementOffset / rowLength };
}

/** The first row of every chunk of a tensor whose rows have `rowLength` elements. */
export function rowCuts(tensor: Tensor, rowLength: number): number[] {
  return tensor.chunks.map((c) => c.elementOffset / rowLength);
}

/** Splits [0, extent) at every cut (chunk boundaries) and into pieces of at most `limit`. */
export function segments(extent: number, cuts: Iterable<number>, limit: number): [number, number][] {
  const points = [...new Set([0, extent, ...[...cuts].filter((c) => c > 0 && c < extent)])].sort(
    (x, y) => x - y,
  );
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    for (let start = points[i]; start < points[i + 1]; start += limit) {
      out.push([start, Math.min(points[i + 1], start + limit)]);
    }
  }
  return out;
}
