import type { BoardContext } from '../board.js';
import type { BoardConfig, MemoryPlanReply } from '../engine/protocol.js';
import { field, h, numberInput, replaceChildren, select } from '../ui/dom.js';
import { formatBytes } from '../ui/format.js';
import { METHOD_LABELS, type MethodName, methodConfig } from './train-settings.js';

/** Precision choices of the frozen base, as LLaMA-Factory keys. */
export const PRECISIONS: [string, string, BoardConfig][] = [
  ['f32', 'float32 (exact)', {}],
  ['bf16', 'bfloat16', { bf16: true }],
  ['fp16', 'float16', { fp16: true }],
  ['8', '8-bit (Q8_0 blocks)', { quantization_bit: 8 }],
  ['4', '4-bit (Q4_0 blocks, QLoRA)', { quantization_bit: 4 }],
];

/**
 * The memory plan of a run for the loaded model (@webtune/train's planMemory, as
 * `webtune train --dry-run` prints it): weights, trainable parameters, gradients, optimizer
 * state, activations with and without gradient checkpointing and the KV cache, against this
 * adapter's limits and a browser tab's budget; a run that cannot fit gets the plan's advice.
 */
export function memoryPlanView(context: BoardContext): {
  element: HTMLElement;
  refresh: () => Promise<void>;
} {
  const { engine, store } = context;
  const method = select('plan-method', Object.entries(METHOD_LABELS) as [string, string][], 'lora');
  const precision = select(
    'plan-precision',
    PRECISIONS.map(([value, label]) => [value, label]),
    'f32',
  );
  const batch = numberInput('plan-batch', 1, { min: 1, step: 1 });
  const cutoff = numberInput('plan-cutoff', 512, { min: 1, step: 1 });
  const checkpointing = h('input', { type: 'checkbox', name: 'plan-checkpointing', checked: true });
  const output = h('div', { class: 'memory-plan' });

  const config = (): BoardConfig => ({
    ...methodConfig(method.value as MethodName),
    ...(PRECISIONS.find(([value]) => value === precision.value)?.[2] ?? {}),
    per_device_train_batch_size: Number(batch.value) || 1,
    cutoff_len: Number(cutoff.value) || 1,
    gradient_checkpointing: checkpointing.checked,
  });
  const refresh = async () => {
    if (!store.get().model) {
      replaceChildren(output);
      return;
    }
    try {
      render(output, await engine.call({ kind: 'memory-plan', config: config() }));
    } catch (error) {
      replaceChildren(output, h('p', { class: 'error' }, (error as Error).message));
    }
  };
  for (const control of [method, precision, batch, cutoff, checkpointing])
    control.addEventListener('change', refresh);
  store.subscribe((state, previous) => {
    if (state.model !== previous.model) refresh();
  });
  const element = h(
    'div',
    { class: 'card' },
    h('h3', {}, 'Memory plan'),
    h(
      'p',
      {},
      'What a run needs on the GPU before anything starts, as webtune train --dry-run computes it. The Train tab refuses a run that cannot fit.',
    ),
    h(
      'div',
      { class: 'form-grid' },
      field('Method', method),
      field(
        'Base weights',
        precision,
        'Quantizing the frozen base shrinks it; LoRA trains on top in float32.',
      ),
      field('Batch size', batch),
      field('Sequence length (cutoff_len)', cutoff),
      h('div', { class: 'field' }, h('label', {}, checkpointing, ' Gradient checkpointing')),
    ),
    output,
  );
  return { element, refresh };
}

function render(element: HTMLElement, reply: MemoryPlanReply): void {
  const { plan } = reply;
  const software = reply.adapterClass === 'software';
  const guidance = software
    ? h(
        'p',
        { class: 'warning gpu-guidance' },
        'This GPU is a software adapter (WebGPU on the CPU): everything works, but slowly. Keep to the smallest models, short sequences and a few steps, or use the Remote tab to train on a machine with a GPU.',
      )
    : null;
  if (!plan) {
    replaceChildren(element, guidance, h('p', { class: 'error' }, reply.problems.join(' ')));
    return;
  }
  const rows: [string, number][] = [
    [`Weights (${reply.baseFormat})`, plan.weights],
    ['Trainable parameters', plan.trainable],
    ['Gradients', plan.gradients],
    ['Optimizer state (AdamW)', plan.optimizer],
    ['Activations with gradient checkpointing', plan.activationsCheckpointed],
    ['Activations without checkpointing', plan.activations],
    [`Logits and their gradient (${plan.logitsChunkRows} rows at once)`, plan.logits],
    ['KV cache (chat, at this length)', plan.kvCache],
    ['Predicted peak', plan.peak],
  ];
  replaceChildren(
    element,
    guidance,
    h(
      'table',
      { class: 'memory-table', 'data-fits': String(plan.fits) },
      h('caption', {}, plan.fits ? 'This run fits.' : 'This run does not fit.'),
      h(
        'tbody',
        {},
        rows.map(([label, bytes]) =>
          h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, formatBytes(bytes))),
        ),
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, 'Budget (a browser tab)'),
          h('td', {}, formatBytes(plan.budget)),
        ),
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, 'Largest tensor'),
          h('td', {}, formatBytes(plan.largestTensor)),
        ),
      ),
    ),
    plan.fits
      ? null
      : h(
          'div',
          { class: 'plan-advice', role: 'alert' },
          h('p', {}, plan.problems.join('; ')),
          h('p', {}, 'Try: '),
          h(
            'ul',
            {},
            plan.advice.map((advice) => h('li', {}, advice)),
          ),
        ),
  );
}
