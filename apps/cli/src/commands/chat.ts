import { createInterface } from 'node:readline';
import {
  baseFormatFrom,
  optional,
  parseCommandLine,
  QUANTIZATION_HELP,
  QUANTIZATION_OPTIONS,
  required,
  SAMPLING_HELP,
  SAMPLING_OPTIONS,
  samplingFrom,
} from '../args.js';
import { ChatEngine } from '../chat-engine.js';
import { loadModel, openDevice } from '../model-loading.js';
import { type ChatMessage, MessagesError, promptEncoderFor } from '../prompting.js';
import { bold, cyan, dim, green, UsageError, yellow } from '../ui.js';
import { argvFromConfig } from './config-argv.js';

export const chatHelp = `webtune chat --model DIR [--adapter DIR] [--compare] [options]

An interactive chat through the model's chat template, streaming each answer. Type a message and
press Enter; /reset forgets the conversation, /exit (or Ctrl-D) quits. Standard input may be a pipe:
each line is one user message.

With --compare (needs --adapter) every message is answered twice, by the base model (adapter
switched off, no second copy in memory) and by the tuned one, each keeping its own history.

Options:
  --model DIR        Hugging Face model folder, hub id or .gguf file
  --adapter DIR      PEFT adapter folder to apply
  --compare          answer with the base model and the tuned one
  --template NAME    LLaMA-Factory template name, or auto for the tokenizer's own Jinja
                     template (default: as LLaMA-Factory: its chat_template parsed, else empty)
  --system TEXT      system message
${SAMPLING_HELP}
${QUANTIZATION_HELP}

Examples:
  webtune chat --model ./Qwen3-0.6B --adapter ./saves/lora
  webtune chat --model ./stories260K --adapter ./out --compare --max-new-tokens 64
  printf 'Who are you?\\n' | webtune chat --model ./base --adapter ./out --compare`;

export async function chatCommand(commandLine: string[]): Promise<number> {
  const argv = argvFromConfig('chat', commandLine);
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    compare: { type: 'boolean' },
    template: { type: 'string' },
    system: { type: 'string' },
    ...SAMPLING_OPTIONS,
    ...QUANTIZATION_OPTIONS,
  });
  const modelName = required(values, 'model');
  const adapter = optional(values, 'adapter');
  const compare = Boolean(values.compare);
  if (compare && !adapter)
    throw new UsageError(
      '--compare needs --adapter (base and tuned are the same model with the adapter off and on)',
    );
  const sampling = samplingFrom(values, { maxNewTokens: 256 });
  // Without --max-new-tokens the default is lowered to what the context leaves after the prompt
  // (a small model's 128 positions), rather than refusing the first question.
  const fitContext = values['max-new-tokens'] === undefined;
  const system = optional(values, 'system');
  const interactive = Boolean(process.stdin.isTTY);

  const device = await openDevice();
  try {
    const loaded = await loadModel(device, modelName, { adapter, baseFormat: baseFormatFrom(values) });
    const engine = new ChatEngine(
      loaded,
      promptEncoderFor(loaded.tokenizer, { template: optional(values, 'template') }),
    );
    const sides = compare
      ? [
          { label: 'base', base: true, paint: yellow },
          { label: 'tuned', base: false, paint: green },
        ]
      : [{ label: 'assistant', base: false, paint: green }];
    const histories: ChatMessage[][] = sides.map(() => (system ? [{ role: 'system', content: system }] : []));
    if (interactive) {
      console.log(
        dim(
          `chatting with ${modelName}${adapter ? ` + ${adapter}` : ''} (template ${engine.template.name}); /reset, /exit`,
        ),
      );
    }
    const lines = createInterface({
      input: process.stdin,
      output: interactive ? process.stdout : undefined,
      terminal: interactive,
    });
    // Ctrl-C stops the answer being written, or quits at the prompt.
    let answering: AbortController | null = null;
    lines.on('SIGINT', () => {
      if (answering) answering.abort();
      else lines.close();
    });
    const ask = () => {
      if (!interactive) return;
      lines.setPrompt(cyan('you> '));
      lines.prompt();
    };
    ask();
    for await (const line of lines) {
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        for (const history of histories) history.splice(system ? 1 : 0);
        console.log(dim('(conversation cleared)'));
        ask();
        continue;
      }
      if (text.length === 0) {
        ask();
        continue;
      }
      for (const [index, side] of sides.entries()) {
        const history = histories[index];
        history.push({ role: 'user', content: text });
        process.stdout.write(`${bold(side.paint(`${side.label}>`))} `);
        answering = new AbortController();
        try {
          const completion = await engine.complete(history, {
            ...sampling,
            fitContext,
            base: side.base,
            signal: answering.signal,
            onText: (piece) => process.stdout.write(piece),
          });
          answering = null;
          history.push({ role: 'assistant', content: completion.text });
          process.stdout.write(completion.finishReason === 'length' ? `${dim(' [max tokens]')}\n` : '\n');
        } catch (error) {
          answering = null;
          history.pop();
          process.stdout.write('\n');
          if (!(error instanceof MessagesError)) throw error;
          console.error(yellow(`${error.message}; /reset starts a new conversation`, process.stderr));
          break;
        }
      }
      ask();
    }
    lines.close();
    return 0;
  } finally {
    device.destroy();
  }
}
