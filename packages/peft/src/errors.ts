/** A configuration, model or adapter file that does not fit: the message says what and where. */
export class PeftError extends Error {
  override name = 'PeftError';
}
