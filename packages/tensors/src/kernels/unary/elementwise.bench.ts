import { bench } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { binary } from '../binary/binary.js';
import { kernelSource } from '../shared/wgsl.js';
import { unary } from './unary.js';

const N = 16 * 1024 * 1024;

interface Variant {
  name: string;
  workgroup: number;
  perInvocation: number;
  layout: 'consecutive' | 'interleaved' | 'grid-stride' | 'unchecked' | 'stride-block';
  fixedWorkgroups?: number;
}

function body(v: Variant): string {
  const k = v.perInvocation;
  if (v.layout === 'grid-stride') {
    return `
  let stride = nwg.x * nwg.y * WG;
  for (var index = flat_workgroup(wid, nwg) * WG + lid.x; index < params.n; index += stride) {
    out[index] = a[index] + b[index];
  }`;
  }
  if (v.layout === 'stride-block') {
    const inner = [];
    for (let j = 0; j < k; j++) inner.push(`    out[index + ${j}u] = a[index + ${j}u] + b[index + ${j}u];`);
    return `
  let stride = nwg.x * nwg.y * WG * ${k}u;
  for (var index = (flat_workgroup(wid, nwg) * WG + lid.x) * ${k}u; index < params.n; index += stride) {
${inner.join('\n')}
  }`;
  }
  if (v.layout === 'unchecked') {
    const inner = [];
    for (let j = 0; j < k; j++) inner.push(`    out[base + ${j}u] = a[base + ${j}u] + b[base + ${j}u];`);
    const checked = [];
    for (let j = 0; j < k; j++)
      checked.push(
        `    if (base + ${j}u < params.n) { out[base + ${j}u] = a[base + ${j}u] + b[base + ${j}u]; }`,
      );
    return `
  let base = (flat_workgroup(wid, nwg) * WG + lid.x) * ${k}u;
  if (base + ${k - 1}u < params.n) {
${inner.join('\n')}
  } else {
${checked.join('\n')}
  }`;
  }
  const lines: string[] = [];
  if (v.layout === 'consecutive') {
    lines.push(`  let base = (flat_workgroup(wid, nwg) * WG + lid.x) * ${k}u;`);
    for (let j = 0; j < k; j++)
      lines.push(`  if (base + ${j}u < params.n) { out[base + ${j}u] = a[base + ${j}u] + b[base + ${j}u]; }`);
  } else {
    lines.push(`  let base = flat_workgroup(wid, nwg) * WG * ${k}u + lid.x;`);
    for (let j = 0; j < k; j++) {
      lines.push(`  { let i = base + ${j}u * WG; if (i < params.n) { out[i] = a[i] + b[i]; } }`);
    }
  }
  return lines.join('\n');
}

bench(
  'add f32 16M variants',
  async () => {
    const device = await createDevice();
    const a = device.fromArray(new Float32Array(N).fill(1), [N], 'f32');
    const b = device.fromArray(new Float32Array(N).fill(2), [N], 'f32');
    const out = device.empty([N], 'f32');
    const variants: Variant[] = [];
    variants.push({ name: 'consecutive wg64 x1', workgroup: 64, perInvocation: 1, layout: 'consecutive' });
    for (const workgroup of [32, 64, 256])
      for (const perInvocation of [3, 4, 6])
        for (const layout of ['consecutive', 'unchecked'] as const)
          variants.push({
            name: `${layout} wg${workgroup} x${perInvocation}`,
            workgroup,
            perInvocation,
            layout,
          });
    for (const fixed of [16, 32, 64, 128])
      for (const workgroup of [32, 64, 128])
        for (const perInvocation of [1, 4])
          variants.push({
            name: `stride-block wg${workgroup} groups${fixed} x${perInvocation}`,
            workgroup,
            perInvocation,
            layout: 'stride-block',
            fixedWorkgroups: fixed,
          });
    const fields = [{ name: 'n', type: 'u32' as const }];
    const run = (v: Variant, repeats: number) => {
      const items = N / 4;
      const groups = v.fixedWorkgroups ?? Math.ceil(items / (v.workgroup * v.perInvocation));
      for (let r = 0; r < repeats; r++) {
        device.dispatch({
          key: `lab:${v.name}`,
          source: () =>
            kernelSource({
              storage: [
                { name: 'a', type: 'vec4<f32>', access: 'read' },
                { name: 'b', type: 'vec4<f32>', access: 'read' },
                { name: 'out', type: 'vec4<f32>', access: 'read_write' },
              ],
              uniforms: fields,
              workgroupSize: v.workgroup,
              body: body(v),
            }),
          bindings: [a, b, out],
          uniforms: { fields, values: { n: items } },
          workgroups: grid(groups, device.maxWorkgroupsPerDimension),
        });
      }
    };
    for (const v of variants) run(v, 1);
    await device.sync();
    const check = await out.toArray();
    if (check[N - 1] !== 3 || check[0] !== 3) throw new Error('wrong result');
    const rounds = Number(process.env.LAB_ROUNDS ?? 3);
    const repeats = 5;
    const times = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const v of variants) {
        await device.sync();
        const start = performance.now();
        run(v, repeats);
        await device.sync();
        const ms = (performance.now() - start) / repeats;
        if (!times.has(v.name)) times.set(v.name, []);
        times.get(v.name)!.push(ms);
      }
    }
    const rows = variants.map((v) => {
      const list = times.get(v.name)!.sort((x, y) => x - y);
      const best = list[0];
      const median = list[Math.floor(list.length / 2)];
      return {
        name: v.name,
        best,
        median,
        gbps: (12 * N) / (best * 1e6),
        medianGbps: (12 * N) / (median * 1e6),
      };
    });
    rows.sort((x, y) => y.gbps - x.gbps);
    for (const r of rows)
      console.log(
        `${r.name.padEnd(36)} best ${r.best.toFixed(2)} ms ${r.gbps.toFixed(2)} GB/s, median ${r.medianGbps.toFixed(2)} GB/s`,
      );
  },
  { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 },
);

bench(
  'library ops 16M f32: tuned vs one item per invocation',
  async () => {
    const tuned = await createDevice();
    const plain = await createDevice({ tuning: { elementwisePerInvocation: 1 } });
    const setups = [
      { name: `tuned (x${tuned.tuning.elementwisePerInvocation})`, device: tuned },
      { name: 'one vec4 per invocation', device: plain },
    ].map(({ name, device }) => ({
      name,
      device,
      a: device.fromArray(new Float32Array(N).fill(1), [N], 'f32'),
      b: device.fromArray(new Float32Array(N).fill(2), [N], 'f32'),
    }));
    const ops: { name: string; bytes: number; run: (s: (typeof setups)[number]) => void }[] = [
      { name: 'add', bytes: 12 * N, run: (s) => binary('add', s.a, s.b).dispose() },
      { name: 'add scalar', bytes: 8 * N, run: (s) => binary('add', s.a, 1).dispose() },
      { name: 'neg', bytes: 8 * N, run: (s) => unary('neg', s.a).dispose() },
      { name: 'gelu', bytes: 8 * N, run: (s) => unary('gelu', s.a).dispose() },
    ];
    const repeats = 5;
    const rounds = Number(process.env.LAB_ROUNDS ?? 5);
    const times = new Map<string, number[]>();
    const time = async (device: Device, fn: () => void) => {
      await device.sync();
      const start = performance.now();
      for (let r = 0; r < repeats; r++) fn();
      await device.sync();
      return (performance.now() - start) / repeats;
    };
    for (const op of ops) for (const s of setups) await time(s.device, () => op.run(s));
    for (let round = 0; round < rounds; round++) {
      for (const op of ops) {
        for (const s of setups) {
          const key = `${op.name} | ${s.name}`;
          if (!times.has(key)) times.set(key, []);
          times.get(key)!.push(await time(s.device, () => op.run(s)));
        }
      }
    }
    for (const op of ops) {
      for (const s of setups) {
        const list = times.get(`${op.name} | ${s.name}`)!.sort((x, y) => x - y);
        const best = list[0];
        const median = list[Math.floor(list.length / 2)];
        console.log(
          `${op.name.padEnd(12)} ${s.name.padEnd(26)} best ${(op.bytes / (best * 1e6)).toFixed(2)} GB/s, median ${(op.bytes / (median * 1e6)).toFixed(2)} GB/s`,
        );
      }
    }
  },
  { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 },
);

bench(
  'library add 16M f32: tuning grid, interleaved',
  async () => {
    const configs = [
      [64, 4],
      [128, 4],
      [256, 4],
      [64, 2],
      [64, 8],
      [64, 1],
      [256, 1],
    ];
    const setups = [];
    for (const [workgroup, perInvocation] of configs) {
      const device = await createDevice({
        tuning: { elementwiseWorkgroup: workgroup, elementwisePerInvocation: perInvocation },
      });
      setups.push({
        name: `wg${workgroup} x${perInvocation}`,
        device,
        a: device.fromArray(new Float32Array(N).fill(1), [N], 'f32'),
        b: device.fromArray(new Float32Array(N).fill(2), [N], 'f32'),
      });
    }
    const times = new Map<string, number[]>();
    const rounds = Number(process.env.LAB_ROUNDS ?? 5);
    for (let round = -1; round < rounds; round++) {
      for (const s of setups) {
        await s.device.sync();
        const start = performance.now();
        for (let r = 0; r < 4; r++) binary('add', s.a, s.b).dispose();
        await s.device.sync();
        const ms = (performance.now() - start) / 4;
        if (round < 0) continue;
        if (!times.has(s.name)) times.set(s.name, []);
        times.get(s.name)!.push(ms);
      }
    }
    for (const s of setups) {
      const list = times.get(s.name)!.sort((x, y) => x - y);
      const gbps = (ms: number) => ((12 * N) / (ms * 1e6)).toFixed(2);
      console.log(
        `add ${s.name.padEnd(10)} best ${gbps(list[0])} GB/s, median ${gbps(list[list.length >> 1])} GB/s`,
      );
    }
  },
  { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 },
);
