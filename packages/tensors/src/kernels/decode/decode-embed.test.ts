import { Rng } from '@webtune/test-utils';
import { beforeAll, describe, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeEmbed } from './decode-tokens.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

describe('decodeEmbed (f32 table)', () => {
  it('gathers a prompt of rows by vec4s (several per invocation) or by scalars, ids outside the table reading row 0, with a scale', async () => {
    // 37 rows x 36 = 333 vec4s: two workgroups, each invocation taking vectors 128 apart.
    for (const [rows, width, vocab, scale] of [
      [37, 36, 50, 1],
      [37, 36, 50, 0.5],
      [5, 6, 9, 1],
      [1, 288, 40, 1],
    ] as const) {
      const rng = new Rng(rows * width + vocab);
      const table = rng.uniform(vocab * width, -1, 1);
      const ids = Int32Array.from({ length: rows }, (_, r) =>
        r === 3 ? vocab + 2 : r === 4 ? -1 : (r * 17) % vocab,
      );
      const expected = new Float64Array(rows * width);
      ids.forEach((id, r) => {
        const token = id >= 0 && id < vocab ? id : 0;
        for (let c = 0; c < width; c++)
          expected[r * width + c] = Math.fround(table[token * width + c] * scale);
      });
      const hidden = device.empty([rows, width], 'f32');
      decodeEmbed(
        device,
        device.fromArray(table, [vocab, width], 'f32'),
        device.fromArray(ids, [rows], 'i32'),
        hidden,
        scale,
      );
      await expectKernel(`embed ${rows} x ${width}`, { hidden: { actual: hidden, expected, exact: true } });
    }
  });
});
