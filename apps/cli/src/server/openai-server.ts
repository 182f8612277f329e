/**
 * An OpenAI-compatible HTTP API over a ChatEngine: GET /v1/models, POST /v1/chat/completions
 * (JSON or server-sent events with `stream: true`). Requests are checked (size, JSON, fields,
 * API key) and answered with OpenAI's error shape; generations are queued and decoded in batches (ChatEngine).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ChatEngine, CompletionOptions } from '../chat-engine.js';
import { type ChatMessage, MessagesError } from '../prompting.js';
import {
  applyServerLimits,
  GuardError,
  HttpGuard,
  logWhenDone,
  requestUrl,
  requireJsonBody,
  SERVER_OPTIONS,
} from './http-guard.js';

export interface OpenAiServerOptions {
  /** The model id clients name (GET /v1/models lists it). */
  modelId: string;
  /** Required `Authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** max_tokens when a request gives none (default 256). */
  defaultMaxTokens?: number;
  /** Most requests waiting for the device before new ones get 503 (default 64). */
  maxQueue?: number;
  /** Called once per request when it is over, answered or abandoned (for the access log). */
  onRequest?: (line: string) => void;
  /** The address the server binds (`--host`, default 127.0.0.1): a name there is an allowed Host. */
  bindHost?: string;
  /** More Host names to answer to (`--allow-host`; `*` any). Loopback names and IPs always pass. */
  allowHosts?: readonly string[];
  /** Origins whose pages may call the API from a browser (`--allow-origin`); default none. */
  allowOrigins?: readonly string[];
}

/** An error answered as `{"error": {...}}` with an HTTP status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

/** Responses that are server-sent event streams (their errors go out as an event). */
const streamingResponses = new WeakSet<ServerResponse>();

function sendError(response: ServerResponse, error: HttpError): void {
  if (response.headersSent) {
    // Mid-stream (after the 200): an error event, then [DONE], so clients see why it ended.
    if (streamingResponses.has(response) && !response.writableEnded) {
      const body = {
        error: { message: error.message, type: error.type, param: error.param, code: error.code },
      };
      response.write(`data: ${JSON.stringify(body)}\n\n`);
      response.end('data: [DONE]\n\n');
    } else response.end();
    return;
  }
  sendJson(
    response,
    error.status,
    { error: { message: error.message, type: error.type, param: error.param, code: error.code } },
    error.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {},
  );
}

/** Reads the body, refusing more than `limit` bytes (413) without buffering the rest. */
function readBody(request: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(
        new HttpError(
          413,
          `the request body is ${declared} bytes; the limit is ${limit}`,
          'invalid_request_error',
          'request_too_large',
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(
          new HttpError(
            413,
            `the request body is over the limit of ${limit} bytes`,
            'invalid_request_error',
            'request_too_large',
          ),
        );
        request.removeAllListeners('data');
        request.resume();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function keyMatches(header: string | undefined, key: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1].trim());
  const expected = Buffer.from(key);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The parts of a chat-completions request webtune reads, checked. */
interface ChatRequest {
  messages: ChatMessage[];
  stream: boolean;
  includeUsage: boolean;
  options: Omit<CompletionOptions, 'onText' | 'signal'>;
}

const ROLES = new Set(['system', 'user', 'assistant', 'developer']);

function contentText(content: unknown, index: number): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, p) => {
        if (part && typeof part === 'object' && (part as { type?: unknown }).type === 'text') {
          const text = (part as { text?: unknown }).text;
          if (typeof text === 'string') return text;
        }
        throw new HttpError(
          400,
          `messages[${index}].content[${p}]: only text parts are supported`,
          'invalid_request_error',
          null,
          `messages[${index}].content`,
        );
      })
      .join('');
  }
  throw new HttpError(
    400,
    `messages[${index}].content must be a string`,
    'invalid_request_error',
    null,
    `messages[${index}].content`,
  );
}

function numberField(
  body: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
  integer = false,
): number | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new HttpError(
      400,
      `${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(value)}`,
      'invalid_request_error',
      null,
      name,
    );
  }
  return value;
}

function parseChatRequest(
  text: string,
  options: Required<Pick<OpenAiServerOptions, 'defaultMaxTokens' | 'modelId'>>,
  contextLength: number,
): ChatRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new HttpError(400, 'the request body must be a JSON object');
  const request = body as Record<string, unknown>;
  if (request.model !== undefined && request.model !== options.modelId) {
    throw new HttpError(
      404,
      `the model "${String(request.model)}" does not exist; this server serves "${options.modelId}"`,
      'invalid_request_error',
      'model_not_found',
      'model',
    );
  }
  if (!Array.isArray(request.messages) || request.messages.length === 0) {
    throw new HttpError(400, 'messages must be a non-empty array', 'invalid_request_error', null, 'messages');
  }
  const messages = request.messages.map((message: unknown, index: number): ChatMessage => {
    if (!message || typeof message !== 'object')
      throw new HttpError(
        400,
        `messages[${index}] must be an object`,
        'invalid_request_error',
        null,
        `messages[${index}]`,
      );
    const role = (message as { role?: unknown }).role;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw new HttpError(
        400,
        `messages[${index}].role must be system, user or assistant, got ${JSON.stringify(role)}`,
        'invalid_request_error',
        null,
        `messages[${index}].role`,
      );
    }
    return {
      role: role === 'developer' ? 'system' : (role as ChatMessage['role']),
      content: contentText((message as { content?: unknown }).content, index),
    };
  });
  const n = numberField(request, 'n', 1, 1, true);
  void n;
  if (request.stream !== undefined && typeof request.stream !== 'boolean')
    throw new HttpError(400, 'stream must be a boolean', 'invalid_request_error', null, 'stream');
  let stop: string[] = [];
  if (typeof request.stop === 'string') stop = [request.stop];
  else if (
    Array.isArray(request.stop) &&
    request.stop.every((s) => typeof s === 'string') &&
    request.stop.length <= 4
  )
    stop = request.stop as string[];
  else if (request.stop !== undefined && request.stop !== null)
    throw new HttpError(
      400,
      'stop must be a string or an array of up to 4 strings',
      'invalid_request_error',
      null,
      'stop',
    );
  const maxTokens =
    numberField(request, 'max_completion_tokens', 1, contextLength, true) ??
    numberField(request, 'max_tokens', 1, contextLength, true) ??
    options.defaultMaxTokens;
  const streamOptions = request.stream_options as { include_usage?: unknown } | undefined;
  return {
    messages,
    stream: request.stream === true,
    includeUsage: streamOptions?.include_usage === true,
    options: {
      maxNewTokens: maxTokens,
      temperature: numberField(request, 'temperature', 0, 2),
      topP: numberField(request, 'top_p', Number.MIN_VALUE, 1),
      seed: numberField(request, 'seed', 0, 2 ** 32 - 1, true),
      stop,
    },
  };
}

/** Creates the server (call `listen` on it). */
export function createOpenAiServer(engine: ChatEngine, serverOptions: OpenAiServerOptions): Server {
  const options = {
    ...serverOptions,
    defaultMaxTokens: serverOptions.defaultMaxTokens ?? 256,
    maxBodyBytes: serverOptions.maxBodyBytes ?? 1 << 20,
    maxQueue: serverOptions.maxQueue ?? 64,
  };
  const created = Math.floor(Date.now() / 1000);

  async function chatCompletions(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // JSON only when declared as such: a cross-site form or text/plain POST needs no preflight.
    requireJsonBody(request);
    const body = await readBody(request, options.maxBodyBytes);
    const chat = parseChatRequest(body, options, engine.contextLength);
    if (engine.queued >= options.maxQueue) {
      throw new HttpError(
        503,
        `the server is busy: ${engine.queued} requests are waiting; retry later`,
        'server_error',
        'queue_full',
      );
    }
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const aborted = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) aborted.abort();
    });
    let completion: Awaited<ReturnType<ChatEngine['complete']>>;
    try {
      if (!chat.stream) {
        completion = await engine.complete(chat.messages, { ...chat.options, signal: aborted.signal });
        sendJson(response, 200, {
          id,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: options.modelId,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: completion.text },
              logprobs: null,
              finish_reason: completion.finishReason,
            },
          ],
          usage: {
            prompt_tokens: completion.promptTokens,
            completion_tokens: completion.completionTokens,
            total_tokens: completion.promptTokens + completion.completionTokens,
          },
        });
        return;
      }
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: options.modelId, choices, ...extra })}\n\n`;
      // Validate and queue before the 200 goes out, so a bad prompt still gets a JSON error.
      const pending = engine.complete(chat.messages, {
        ...chat.options,
        signal: aborted.signal,
        onText: (text) =>
          response.write(
            chunk([{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }]),
          ),
      });
      streamingResponses.add(response);
      response.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
      });
      response.write(
        chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
      );
      completion = await pending;
      response.write(
        chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: completion.finishReason }]),
      );
      if (chat.includeUsage) {
        response.write(
          chunk([], {
            usage: {
              prompt_tokens: completion.promptTokens,
              completion_tokens: completion.completionTokens,
              total_tokens: completion.promptTokens + completion.completionTokens,
            },
          }),
        );
      }
      response.end('data: [DONE]\n\n');
    } catch (error) {
      if (error instanceof MessagesError)
        throw new HttpError(
          400,
          error.message,
          'invalid_request_error',
          error.name === 'ContextLengthError' ? 'context_length_exceeded' : null,
          'messages',
        );
      throw error;
    }
  }

  const guard = new HttpGuard({
    bindHost: options.bindHost ?? '127.0.0.1',
    allowHosts: options.allowHosts,
    allowOrigins: options.allowOrigins,
  });
  const server = createServer(SERVER_OPTIONS, async (request, response) => {
    const url = requestUrl(request);
    if (!url) {
      sendError(
        response,
        new HttpError(400, 'the request target is not a path', 'invalid_request_error', 'bad_path'),
      );
      return;
    }
    const route = `${request.method} ${url.pathname.replace(/\/+$/, '')}`;
    logWhenDone(request, response, url.pathname, options.onRequest);
    try {
      // Host, Origin and CORS on every request, /health included; answers preflights.
      if (guard.check(request, response, url)) return;
      if (route === 'GET /health') {
        sendJson(response, 200, { status: 'ok', queued: engine.queued, largest_batch: engine.largestBatch });
        return;
      }
      if (options.apiKey && !keyMatches(request.headers.authorization, options.apiKey)) {
        throw new HttpError(
          401,
          'a valid API key is required: send "Authorization: Bearer <key>"',
          'invalid_request_error',
          'invalid_api_key',
        );
      }
      if (route === 'GET /v1/models') {
        sendJson(response, 200, {
          object: 'list',
          data: [{ id: options.modelId, object: 'model', created, owned_by: 'webtune' }],
        });
      } else if (route === `GET /v1/models/${options.modelId}`) {
        sendJson(response, 200, { id: options.modelId, object: 'model', created, owned_by: 'webtune' });
      } else if (route === 'POST /v1/chat/completions') {
        await chatCompletions(request, response);
      } else if (['/v1/models', '/v1/chat/completions'].includes(url.pathname)) {
        throw new HttpError(
          405,
          `${request.method} is not allowed on ${url.pathname}`,
          'invalid_request_error',
          'method_not_allowed',
        );
      } else {
        throw new HttpError(
          404,
          `no route ${request.method} ${url.pathname}; routes: GET /v1/models, POST /v1/chat/completions`,
          'invalid_request_error',
          'not_found',
        );
      }
    } catch (error) {
      if (error instanceof HttpError) sendError(response, error);
      else if (error instanceof GuardError)
        sendError(response, new HttpError(error.status, error.message, 'invalid_request_error', error.code));
      else
        sendError(
          response,
          new HttpError(500, `internal error: ${(error as Error).message}`, 'server_error'),
        );
      if (error instanceof HttpError && error.status === 413) request.socket.destroySoon?.();
    }
  });
  return applyServerLimits(server);
}
