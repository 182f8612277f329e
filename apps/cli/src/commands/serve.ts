import { basename } from 'node:path';
import {
  baseFormatFrom,
  numberOption,
  optional,
  parseCommandLine,
  QUANTIZATION_HELP,
  QUANTIZATION_OPTIONS,
  required,
} from '../args.js';
import { ChatEngine } from '../chat-engine.js';
import { loadModel, openDevice } from '../model-loading.js';
import { promptEncoderFor } from '../prompting.js';
import { SERVER_LIMITS } from '../server/http-guard.js';
import { createOpenAiServer } from '../server/openai-server.js';
import { dim, UsageError, yellow } from '../ui.js';

export const serveHelp = `webtune serve --model DIR [--adapter DIR] [--host H] [--port N] [options]

Serves an OpenAI-compatible API: GET /v1/models, POST /v1/chat/completions (with "stream": true
as server-sent events), GET /health. Messages go through the chat template. One generation runs
on the device at a time; requests arriving meanwhile wait, then decode together in one batch
(same sampling settings, up to 8). Stop with Ctrl-C.

Options:
  --model DIR           Hugging Face model folder, hub id or .gguf file
  --adapter DIR         PEFT adapter folder to apply
  --host H              address to bind (default 127.0.0.1: this machine only)
  --port N              port (default 8000; 0 picks a free one)
  --model-name NAME     the id clients use (default: the adapter's or model's folder name)
  --template NAME       LLaMA-Factory template name, or auto for the tokenizer's own Jinja
                        template (default: as LLaMA-Factory: its chat_template parsed, else empty)
  --api-key KEY         require "Authorization: Bearer KEY"; other users of this machine see
                        command lines (ps), so prefer the environment: WEBTUNE_API_KEY=KEY
  --allow-host NAME     also answer to this Host name (repeatable; * any). Loopback names, IP
                        addresses and the --host name always pass; others are refused (403) so a
                        web page cannot reach the server through DNS rebinding
  --allow-origin URL    let pages from this origin call the API (CORS; repeatable; default none:
                        browsers' cross-site requests are refused with 403)
  --max-body-bytes N    largest request body (default 1048576; over it: 413)
  --max-tokens N        max_tokens when a request gives none (default 256)
  --max-queue N         waiting requests before new ones get 503 (default 64)
  --quiet               no access log
${QUANTIZATION_HELP}

Requests: POST bodies must be Content-Type: application/json (else 415). Limits: request head
${SERVER_LIMITS.maxHeaderBytes / 1024} KiB (431), head within ${SERVER_LIMITS.headersTimeoutMs / 1000}s and whole request within ${SERVER_LIMITS.requestTimeoutMs / 1000}s (408),
${SERVER_LIMITS.maxConnections} open connections. A stream that fails after it started ends with an error event and [DONE].

Examples:
  webtune serve --model ./stories260K --port 8000
  webtune serve --model ./Qwen3-0.6B --adapter ./saves/lora --api-key secret --host 0.0.0.0
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"messages":[{"role":"user","content":"Hello"}],"stream":true}'`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'model-name': { type: 'string' },
    template: { type: 'string' },
    'api-key': { type: 'string' },
    'allow-host': { type: 'string', multiple: true },
    'allow-origin': { type: 'string', multiple: true },
    'max-body-bytes': { type: 'string' },
    'max-tokens': { type: 'string' },
    'max-queue': { type: 'string' },
    ...QUANTIZATION_OPTIONS,
    quiet: { type: 'boolean' },
  });
  const modelName = required(values, 'model');
  const adapter = optional(values, 'adapter');
  const host = optional(values, 'host') ?? '127.0.0.1';
  const port = numberOption(values, 'port', { integer: true, min: 0, max: 65535 }) ?? 8000;
  const apiKey = optional(values, 'api-key') ?? process.env.WEBTUNE_API_KEY;
  if (apiKey !== undefined && apiKey.length === 0) throw new UsageError('--api-key must not be empty');
  const maxBodyBytes = numberOption(values, 'max-body-bytes', { integer: true, min: 1024 });
  const defaultMaxTokens = numberOption(values, 'max-tokens', { integer: true, min: 1 });
  const maxQueue = numberOption(values, 'max-queue', { integer: true, min: 0 });

  const device = await openDevice();
  const loaded = await loadModel(device, modelName, { adapter, baseFormat: baseFormatFrom(values) });
  const engine = new ChatEngine(
    loaded,
    promptEncoderFor(loaded.tokenizer, { template: optional(values, 'template') }),
  );
  const modelId = optional(values, 'model-name') ?? basename(adapter ?? modelName);
  const server = createOpenAiServer(engine, {
    modelId,
    apiKey,
    maxBodyBytes,
    defaultMaxTokens,
    maxQueue,
    bindHost: host,
    allowHosts: (values['allow-host'] as string[] | undefined) ?? [],
    allowOrigins: (values['allow-origin'] as string[] | undefined) ?? [],
    onRequest: values.quiet
      ? undefined
      : (line) => console.error(dim(`${new Date().toISOString()} ${line}`, process.stderr)),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new UsageError(`port ${port} on ${host} is in use; pick another with --port`, 1)
          : error,
      );
    });
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  console.log(
    `webtune serve: "${modelId}" (template ${engine.template.name}) on http://${shownHost}:${bound}/v1`,
  );
  if (optional(values, 'api-key') !== undefined) {
    console.error(
      yellow(
        'note: --api-key is visible to other users of this machine (ps, /proc/<pid>/cmdline); set WEBTUNE_API_KEY instead',
        process.stderr,
      ),
    );
  }
  if (!['127.0.0.1', 'localhost', '::1'].includes(host) && !apiKey) {
    console.error(
      yellow(
        `warning: bound to ${host} without --api-key: anyone who can reach this port can use the model`,
        process.stderr,
      ),
    );
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  device.destroy();
  return 0;
}
