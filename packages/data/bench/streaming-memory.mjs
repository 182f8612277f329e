// Host memory of reading a large JSONL dataset in full (prepareDataset) against streaming it
// (streamExamples, buffer_size 16384). Each mode runs in its own process; the figure is the peak
// RSS above the process's start, sampled every 20 ms. Usage (after `pnpm build`):
//   node packages/data/bench/streaming-memory.mjs [rows=400000]
// Prints one JSON row per mode: { case, rows, mode, peakRssMiB, seconds }.
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [mode, file, rowsText] = process.argv.slice(2);
const rows = Number(rowsText ?? mode ?? 400000);

if (mode === 'memory' || mode === 'stream') {
  const { prepareDatasetFromDirectory, streamDatasetFromDirectory } = await import('@webtune/data/node');
  // One token per character: enough to template and tokenize every row.
  const tokenizer = {
    encode: (text) => Array.from(text, (c) => c.codePointAt(0) % 32000),
    decode: (ids) => String.fromCodePoint(...ids),
    tokenToId: () => undefined,
    eosTokenId: 2,
  };
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const began = performance.now();
  const options = {
    stage: 'sft',
    datasets: ['big.jsonl'],
    datasetDir: file,
    tokenizer,
    template: 'default',
    cutoffLen: 256,
  };
  let count = 0;
  if (mode === 'memory') {
    count = (await prepareDatasetFromDirectory(options)).train.length;
  } else {
    const stream = await streamDatasetFromDirectory({ ...options, bufferSize: 16384 });
    for (; count < rows; count++) await stream.next();
    await stream.close();
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  clearInterval(timer);
  console.log(
    JSON.stringify({
      case: 'sft jsonl read + tokenize',
      rows: count,
      mode: mode === 'memory' ? 'streaming: false' : 'streaming: true (buffer 16384)',
      peakRssMiB: Number(((peak - start) / 2 ** 20).toFixed(1)),
      seconds: Number(((performance.now() - began) / 1000).toFixed(1)),
    }),
  );
} else {
  const folder = mkdtempSync(join(tmpdir(), 'webtune-stream-bench-'));
  const out = createWriteStream(join(folder, 'big.jsonl'));
  for (let i = 0; i < rows; i++) {
    const line = `${JSON.stringify({ instruction: `question ${i}: ${'why '.repeat(i % 20)}?`, output: `answer ${i} ${'because '.repeat(i % 30)}` })}\n`;
    if (!out.write(line)) await new Promise((resolve) => out.once('drain', resolve));
  }
  await new Promise((resolve) => out.end(resolve));
  const self = fileURLToPath(import.meta.url);
  for (const which of ['stream', 'memory']) {
    const result = spawnSync(process.execPath, [self, which, folder, String(rows)], { encoding: 'utf8' });
    process.stdout.write(result.stdout || result.stderr);
  }
  rmSync(folder, { recursive: true, force: true });
}
