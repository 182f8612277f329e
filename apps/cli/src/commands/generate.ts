import { generate } from '@webtune/nn';
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
import { loadModel, openDevice } from '../model-loading.js';
import { chatPromptIds, promptEncoderFor } from '../prompting.js';
import { readStdin } from '../stdin.js';

export const generateHelp = `webtune generate --model DIR [--adapter DIR] --prompt TEXT [options]

Continues a prompt and prints the completion only (streamed as it is generated).
Without --template the prompt is raw text (the tokenizer adds BOS); with --template it is one user
message rendered through the chat template (auto: the tokenizer's own).

Options:
  --model DIR              Hugging Face model folder, hub id or .gguf file
  --adapter DIR            PEFT adapter folder to apply
  --prompt TEXT            the prompt ("-" reads it from standard input)
  --template NAME          chat template: auto, default, chatml, llama3, qwen, ...
  --system TEXT            system message (with --template)
${SAMPLING_HELP}
${QUANTIZATION_HELP}
  --stop TEXT              stop at this text (repeatable)

Examples:
  webtune generate --model ./stories260K --prompt "Once upon a time" --max-new-tokens 64
  webtune generate --model ./qwen --adapter ./out --template auto --prompt "Who are you?"
  echo "Lily saw" | webtune generate --model ./stories260K --prompt - --temperature 0.8 --seed 1`;

export async function generateCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    prompt: { type: 'string' },
    template: { type: 'string' },
    system: { type: 'string' },
    stop: { type: 'string', multiple: true },
    ...SAMPLING_OPTIONS,
    ...QUANTIZATION_OPTIONS,
  });
  const modelName = required(values, 'model');
  let prompt = required(values, 'prompt');
  if (prompt === '-') prompt = (await readStdin()).replace(/\n$/, '');
  const sampling = samplingFrom(values, { maxNewTokens: 128 });
  const templateName = optional(values, 'template');
  const device = await openDevice();
  try {
    const { model, tokenizer } = await loadModel(device, modelName, {
      adapter: optional(values, 'adapter'),
      baseFormat: baseFormatFrom(values),
    });
    const stopStrings = ((values.stop as string[] | undefined) ?? []).slice();
    let input: string | number[] = prompt;
    if (templateName !== undefined) {
      const prompts = promptEncoderFor(tokenizer, { template: templateName });
      const system = optional(values, 'system');
      input = chatPromptIds(prompts, [
        ...(system ? [{ role: 'system' as const, content: system }] : []),
        { role: 'user', content: prompt },
      ]);
      stopStrings.push(...prompts.stopStrings());
    }
    await generate(model, tokenizer, input, {
      ...sampling,
      stopStrings,
      onToken: (event) => {
        if (event.text) process.stdout.write(event.text);
      },
    });
    process.stdout.write('\n');
    return 0;
  } finally {
    device.destroy();
  }
}
