import type { AddedToken, TokenizerBackend } from './backend.js';
import { TokenizerError } from './errors.js';

/** The contents of a llama2.c tokenizer.bin. */
export interface Llama2cVocabulary {
  maxTokenLength: number;
  /** Piece bytes by id (SentencePiece's ▁ already written as a space). */
  pieces: Uint8Array[];
  scores: Float32Array;
}

/**
 * Parses llama2.c's tokenizer.bin: an int32 max_token_length, then per token a float32 score,
 * an int32 byte length and the piece bytes, all little-endian, until the end of the file.
 */
export function parseLlama2cTokenizer(bytes: Uint8Array): Llama2cVocabulary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new TokenizerError(`llama2.c tokenizer is ${bytes.length} bytes, too short`);
  const maxTokenLength = view.getInt32(0, true);
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let offset = 4;
  while (offset < bytes.length) {
    if (offset + 8 > bytes.length) {
      throw new TokenizerError(
        `llama2.c tokenizer truncated in the header of token ${pieces.length} at byte ${offset}`,
      );
    }
    const score = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || offset + length > bytes.length) {
      throw new TokenizerError(
        `llama2.c tokenizer token ${pieces.length} claims ${length} bytes at byte ${offset}, past the end (${bytes.length})`,
      );
    }
    pieces.push(bytes.slice(offset, offset + length));
    scores.push(score);
    offset += length;
  }
  if (pieces.length === 0) throw new TokenizerError('llama2.c tokenizer holds no tokens');
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

/** A candidate merge of the symbols in slots `left` and `right`, scored by the merged piece. */
interface Candidate {
  left: number;
  right: number;
  id: number;
  score: number;
  /** Versions of both slots when the candidate was made: a changed slot makes it stale. */
  leftVersion: number;
  rightVersion: number;
}

/**
 * Binary heap ordered by score, highest first, then by left slot: slots keep text order, so
 * this picks the leftmost pair on ties, as run.c's left-to-right scan does.
 */
class CandidateHeap {
  readonly #items: Candidate[] = [];

  get size(): number {
    return this.#items.length;
  }

  static #before(a: Candidate, b: Candidate): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(candidate: Candidate): void {
    const items = this.#items;
    items.push(candidate);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!CandidateHeap.#before(items[index], items[parent])) break;
      [items[index], items[parent]] = [items[parent], items[index]];
      index = parent;
    }
  }

  pop(): Candidate {
    const items = this.#items;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let best = index;
        if (left < items.length && CandidateHeap.#before(items[left], items[best])) best = left;
        if (right < items.length && CandidateHeap.#before(items[right], items[best])) best = right;
        if (best === index) break;
        [items[index], items[best]] = [items[best], items[index]];
        index = best;
      }
    }
    return top;
  }
}

const bytePiece = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * llama2.c's tokenizer (run.c): a leading " " token, one token per UTF-8 character (or its
 * bytes as <0xXX> tokens, id = byte + 3, when the character is not a piece), then greedy merging
 * of the adjacent pair whose concatenation is the highest-scoring piece, leftmost first on ties.
 * The merge loop here uses a heap instead of run.c's quadratic rescans; the result is the same.
 */
export class Llama2cBackend implements TokenizerBackend {
  readonly vocabSize: number;
  readonly addedTokens: readonly AddedToken[];
  readonly bosId: number;
  readonly eosId: number;
  readonly #addBos: boolean;
  readonly #addEos: boolean;
  readonly #pieces: string[];
  readonly #pieceBytes: Uint8Array[];
  readonly #scores: Float32Array;
  readonly #idOf = new Map<string, number>();
  readonly #byteValue: Int16Array;
  readonly #specialText = new Map<number, string>();
  readonly #spaceId: number | undefined;
  readonly #byteIds: Int32Array;

  constructor(
    vocabulary: Llama2cVocabulary,
    options: { bosId: number; eosId: number; unkId?: number; addBos?: boolean; addEos?: boolean },
  ) {
    const decoder = new TextDecoder('utf-8');
    this.#pieceBytes = vocabulary.pieces;
    this.#pieces = vocabulary.pieces.map((piece) => decoder.decode(piece));
    this.#scores = vocabulary.scores;
    this.vocabSize = this.#pieces.length;
    this.bosId = options.bosId;
    this.eosId = options.eosId;
    this.#addBos = options.addBos ?? true;
    this.#addEos = options.addEos ?? false;
    for (const [field, id] of Object.entries({
      bosId: options.bosId,
      eosId: options.eosId,
      unkId: options.unkId,
    })) {
      if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
        throw new TokenizerError(
          `llama2.c ${field} ${id} is outside the vocabulary (0..${this.vocabSize - 1})`,
        );
      }
    }
    // First occurrence wins, as run.c's binary search over a stable sort would find it.
    this.#pieces.forEach((piece, id) => {
      if (!this.#idOf.has(piece)) this.#idOf.set(piece, id);
    });
    this.#byteValue = new Int16Array(this.vocabSize).fill(-1);
    this.#pieces.forEach((piece, id) => {
      const match = bytePiece.exec(piece);
      if (match) this.#byteValue[id] = Number.parseInt(match[1], 16);
    });
    const unkId = options.unkId ?? 0;
    const added: AddedToken[] = [];
    for (const [id, fallback] of [
      [unkId, '<unk>'],
      [this.bosId, '<s>'],
      [this.eosId, '</s>'],
    ] as const) {
      if (this.#specialText.has(id)) continue;
      const content = this.#pieces[id].trim() || fallback;
      this.#specialText.set(id, content);
      added.push({
        id,
        content,
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        singleWord: false,
      });
    }
    this.addedTokens = added.sort((a, b) => a.id - b.id);
    this.#spaceId = this.#idOf.get(' ');
    // run.c uses id = byte + 3; a vocabulary that lists its <0xXX> pieces elsewhere is honoured.
    this.#byteIds = Int32Array.from({ length: 256 }, (_, byte) => {
      const hex = byte.toString(16).toUpperCase().padStart(2, '0');
      const id = this.#idOf.get(`<0x${hex}>`) ?? byte + 3;
      if (id >= this.vocabSize)
        throw new TokenizerError(`llama2.c vocabulary has no token for byte 0x${hex}`);
      return id;
    });
  }

  encode(text: string, addSpecialTokens: boolean): number[] {
    const ids: number[] = [];
    if (addSpecialTokens && this.#addBos) ids.push(this.bosId);
    const symbols: number[] = [];
    if (text.length > 0) {
      if (this.#spaceId === undefined)
        throw new TokenizerError('llama2.c vocabulary has no " " piece for the dummy prefix');
      symbols.push(this.#spaceId);
    }
    const encoder = new TextEncoder();
    for (const character of text) {
      const id = this.#idOf.get(character);
      if (id !== undefined) symbols.push(id);
      else for (const byte of encoder.encode(character)) symbols.push(this.#byteIds[byte]);
    }
    ids.push(...this.#merge(symbols));
    if (addSpecialTokens && this.#addEos) ids.push(this.eosId);
    return ids;
  }

  /** Greedy highest-score merging over a linked list of symbol slots. */
  #merge(symbols: number[]): number[] {
    const count = symbols.length;
    if (count < 2) return symbols;
    const next = Int32Array.from({ length: count }, (_, index) => (index + 1 < count ? index + 1 : -1));
    const previous = Int32Array.from({ length: count }, (_, index) => index - 1);
    const version = new Int32Array(count);
    const heap = new CandidateHeap();
    const consider = (left: number) => {
      const right = next[left];
      if (right < 0) return;
      const id = this.#idOf.get(this.#pieces[symbols[left]] + this.#pieces[symbols[right]]);
      if (id === undefined) return;
      heap.push({
        left,
        right,
        id,
        score: this.#scores[id],
        leftVersion: version[left],
        rightVersion: version[right],
      });
    };
    for (let index = 0; index + 1 < count; index++) consider(index);
    while (heap.size > 0) {
      const { left, right, id, leftVersion, rightVersion } = heap.pop();
      if (next[left] !== right || version[left] !== leftVersion || version[right] !== rightVersion) continue;
      symbols[left] = id;
      version[left]++;
      version[right]++; // the right slot is gone: anything still naming it is stale
      next[left] = next[right];
      if (next[right] >= 0) previous[next[right]] = left;
      if (previous[left] >= 0) consider(previous[left]);
      consider(left);
    }
    const out: number[] = [];
    for (let index = 0; index >= 0; index = next[index]) out.push(symbols[index]);
    return out;
  }

  decode(ids: readonly number[], skipSpecialTokens: boolean): string {
    const chunks: Uint8Array[] = [];
    const encoder = new TextEncoder();
    let total = 0;
    for (const id of ids) {
      let bytes: Uint8Array;
      const special = this.#specialText.get(id);
      if (special !== undefined) {
        if (skipSpecialTokens) continue;
        bytes = encoder.encode(special);
      } else if (this.#byteValue[id] >= 0) {
        bytes = Uint8Array.of(this.#byteValue[id]);
      } else {
        bytes = this.#pieceBytes[id];
      }
      chunks.push(bytes);
      total += bytes.length;
    }
    const joined = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    const text = new TextDecoder('utf-8').decode(joined);
    // The dummy prefix: drop one leading space, as SentencePiece (and run.c after BOS) do.
    return text.startsWith(' ') ? text.slice(1) : text;
  }

  tokenToId(token: string): number | undefined {
    for (const [id, content] of this.#specialText) if (content === token) return id;
    return this.#idOf.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.#specialText.get(id) ?? this.#pieces[id];
  }
}
