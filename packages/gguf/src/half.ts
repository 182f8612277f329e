import { floatBitsToBfloat16Bits, floatBitsToHalfBits, halfBitsToFloatBits } from '@webtune/safetensors';

let halfTable: Float32Array | undefined;

/** The float value of every f16 bit pattern (built on first use, 256 KiB). */
export function halfToFloatTable(): Float32Array {
  if (halfTable !== undefined) return halfTable;
  const bits = new Uint32Array(65536);
  for (let half = 0; half < 65536; half++) bits[half] = halfBitsToFloatBits(half);
  halfTable = new Float32Array(bits.buffer);
  return halfTable;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** f16 bits of `value` rounded to nearest even (as ggml's GGML_FP32_TO_FP16). */
export function floatToHalfBits(value: number): number {
  scratch[0] = value;
  return floatBitsToHalfBits(scratchBits[0]);
}

/** bf16 bits of `value` rounded to nearest even. */
export function floatToBfloat16Bits(value: number): number {
  scratch[0] = value;
  return floatBitsToBfloat16Bits(scratchBits[0]);
}
