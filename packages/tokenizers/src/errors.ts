/** Raised for malformed tokenizer files and invalid ids; the message says which and why. */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}
