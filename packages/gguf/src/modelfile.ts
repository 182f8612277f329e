/** What goes into an Ollama Modelfile. */
export interface ModelfileOptions {
  /** The base model GGUF (path relative to the Modelfile). */
  from: string;
  /** A GGUF LoRA adapter to apply on top. */
  adapter?: string;
  /** Strings that end a reply (the EOS token and the chat template's end-of-turn markers). */
  stopTokens?: readonly string[];
  /** The system prompt the training config set. */
  system?: string;
}

function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * An Ollama Modelfile: FROM the GGUF, ADAPTER when one is used, a PARAMETER stop line per stop
 * token and the SYSTEM prompt. Ollama reads the chat template from the GGUF's
 * `tokenizer.chat_template`, so no TEMPLATE is written.
 */
export function ollamaModelfile(options: ModelfileOptions): string {
  const lines = [`FROM ${options.from}`];
  if (options.adapter) lines.push(`ADAPTER ${options.adapter}`);
  for (const stop of new Set(options.stopTokens ?? []))
    if (stop !== '') lines.push(`PARAMETER stop ${quote(stop)}`);
  if (options.system) lines.push(`SYSTEM """${options.system.replace(/"""/g, '\\"\\"\\"')}"""`);
  return `${lines.join('\n')}\n`;
}
