import { parseArgs } from 'node:util';
import { createDevice, formatBytes } from '@webtune/tensors';
import { bold, table } from '../ui.js';
import { version } from '../version.js';

export const envHelp = `webtune env [--json]

Prints the WebGPU adapter (vendor, architecture, class), its limits and features, and versions.

Examples:
  webtune env
  webtune env --json`;

export async function envCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true });
  const device = await createDevice();
  const report = {
    webtune: version(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    adapter: {
      backend: device.info.backend,
      vendor: device.info.vendor,
      architecture: device.info.architecture,
      device: device.info.device,
      description: device.info.description,
      class: device.info.adapterClass,
    },
    features: device.info.features,
    limits: device.info.limits,
    tuning: device.tuning,
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const a = report.adapter;
    console.log(bold('adapter'));
    console.log(
      table([
        ['backend', a.backend],
        ['vendor', a.vendor || '(not reported)'],
        ['architecture', a.architecture || '(not reported)'],
        ['device', a.device || '(not reported)'],
        ['class', a.class],
      ]),
    );
    console.log(`\n${bold('features')}\n${report.features.join(', ')}`);
    console.log(`\n${bold('limits')}`);
    console.log(
      table(
        Object.entries(report.limits).map(([k, v]) => [
          k,
          k.endsWith('Size') ? `${v} (${formatBytes(v)})` : String(v),
        ]),
      ),
    );
    console.log(`\n${bold('versions')}\nwebtune ${report.webtune}, node ${report.node}, ${report.platform}`);
  }
  device.destroy();
  return 0;
}
