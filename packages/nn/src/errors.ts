/** A model file, config or argument that does not fit what the model needs; the message says which and why. */
export class ModelError extends Error {
  override name = 'ModelError';
}
