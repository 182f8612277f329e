/**
 * A minimal client of the OpenAI chat-completions protocol (`POST {baseUrl}/chat/completions`),
 * which OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio and `webtune serve` all speak. Uses
 * `fetch`, so it runs in Node and browsers.
 */
import { EvaluationError } from '../errors.js';

/** A chat message. */
export interface JudgeMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Where and how to reach a chat-completions endpoint. */
export interface ChatEndpoint {
  /** Base URL including the version path, as OpenAI's SDKs take it: `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1`. */
  baseUrl: string;
  /** Model name sent in the request. */
  model: string;
  /** Sent as `Authorization: Bearer <key>` when given. */
  apiKey?: string;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Milliseconds before a request is abandoned. Default 120000. */
  timeoutMs?: number;
  /** Retries after a network error, 429 or 5xx, with doubling waits from 500 ms. Default 2. */
  retries?: number;
  /** fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** Sampling settings of one request. */
export interface ChatRequestOptions {
  /** Default 0: a judge should be deterministic. */
  temperature?: number;
  maxTokens?: number;
}

/** Sends one non-streaming chat completion request and returns the first choice's text. */
export async function chatCompletion(
  endpoint: ChatEndpoint,
  messages: readonly JudgeMessage[],
  options: ChatRequestOptions = {},
): Promise<string> {
  const url = `${endpoint.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const body = JSON.stringify({
    model: endpoint.model,
    messages,
    temperature: options.temperature ?? 0,
    ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
    stream: false,
  });
  const headers: Record<string, string> = { 'content-type': 'application/json', ...endpoint.headers };
  if (endpoint.apiKey) headers.authorization = `Bearer ${endpoint.apiKey}`;
  const fetcher = endpoint.fetch ?? fetch;
  const retries = endpoint.retries ?? 2;
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await fetcher(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(endpoint.timeoutMs ?? 120_000),
      });
    } catch (error) {
      if (attempt < retries) {
        await wait(500 * 2 ** attempt);
        continue;
      }
      throw new EvaluationError(
        `the judge endpoint ${url} could not be reached: ${(error as Error).message}`,
      );
    }
    if (response.status === 429 || response.status >= 500) {
      if (attempt < retries) {
        await response.body?.cancel();
        await wait(500 * 2 ** attempt);
        continue;
      }
    }
    const text = await response.text();
    if (!response.ok) {
      throw new EvaluationError(
        `the judge endpoint ${url} answered ${response.status}: ${text.slice(0, 300)}`,
      );
    }
    let parsed: { choices?: { message?: { content?: unknown } }[] };
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new EvaluationError(
        `the judge endpoint ${url} answered with something that is not JSON: ${text.slice(0, 200)}`,
      );
    }
    const content = parsed.choices?.[0]?.message?.content;
    if (typeof content !== 'string') {
      throw new EvaluationError(
        `the judge endpoint ${url} answered without choices[0].message.content: ${text.slice(0, 200)}`,
      );
    }
    return content;
  }
}

function wait(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
