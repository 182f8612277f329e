import type { Device, Tensor } from '@webtune/tensors';
import { type ModelConfig, rotaryDim } from '../config/model-config.js';
import * as F from '../functional.js';

/** The fused decoder's rotary tables: [capacity, rotary / 2], and Gemma 3's local ones or null. */
export interface RotaryTableSet {
  cos: Tensor;
  sin: Tensor;
  local: { cos: Tensor; sin: Tensor } | null;
}

/**
 * One model's rotary tables for every position of a cache, kept between `generate` calls
 * (building and uploading them took ~0.3 ms of every prefill's host time on lavapipe at the
 * stories15M shape). Each caller gets views of the kept tables and disposes them; the tables'
 * buffers live until the last view and the cache have let go.
 *
 * Rebuilt when the capacity, the device or the config's rotary fields (base, scaling, rotated
 * width, Gemma 3's local rope) differ from the kept tables': dynamic and LongRoPE scalings read
 * the table's length, so a longer table's prefix is not reused. One set is kept.
 */
export class RotaryTableCache {
  private kept: { device: Device; key: string; capacity: number; tables: RotaryTableSet } | null = null;
  /** Times the tables were built (tests count reuse with it). */
  builds = 0;

  /** Views of the tables for `capacity` positions: the caller disposes them. */
  tablesFor(device: Device, config: ModelConfig, capacity: number): RotaryTableSet {
    const key = rotaryKey(config);
    const kept = this.kept;
    if (!kept || kept.device !== device || kept.key !== key || kept.capacity !== capacity) {
      this.release();
      this.kept = { device, key, capacity, tables: buildTables(device, config, capacity) };
      this.builds++;
    }
    const { tables } = this.kept as NonNullable<typeof this.kept>;
    const view = (tensor: Tensor) => tensor.prefixView(tensor.shape).keep();
    return {
      cos: view(tables.cos),
      sin: view(tables.sin),
      local: tables.local ? { cos: view(tables.local.cos), sin: view(tables.local.sin) } : null,
    };
  }

  /** Frees the kept tables (views still held keep their buffers until disposed). */
  release(): void {
    const kept = this.kept;
    if (!kept) return;
    this.kept = null;
    kept.tables.cos.dispose();
    kept.tables.sin.dispose();
    kept.tables.local?.cos.dispose();
    kept.tables.local?.sin.dispose();
  }
}

/** Everything of the config the tables depend on besides the capacity. */
function rotaryKey(config: ModelConfig): string {
  return JSON.stringify([
    rotaryDim(config),
    config.ropeTheta,
    config.ropeScaling ?? null,
    config.localRope ?? null,
  ]);
}

/**
 * Rotary tables [capacity, rotary / 2] for every position a cache can hold, computed as the
 * model computes them, and Gemma 3's local tables (its sliding layers' base and scaling) or null.
 */
function buildTables(device: Device, config: ModelConfig, capacity: number): RotaryTableSet {
  const positions = Array.from({ length: capacity }, (_, i) => i);
  const tables = (base: number, scaling: ModelConfig['ropeScaling']) => {
    const { cos, sin } = F.rotaryTables(device, {
      positions,
      dim: rotaryDim(config),
      base,
      scaling: scaling ?? undefined,
    });
    return { cos: cos.keep(), sin: sin.keep() };
  };
  const local = config.localRope ? tables(config.localRope.theta, config.localRope.scaling) : null;
  return { ...tables(config.ropeTheta, config.ropeScaling), local };
}
