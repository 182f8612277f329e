import type { ModelFileSink, ModelFileSource } from '@webtune/nn';
import { VALUE_HEAD_NAMES, type ValueHead } from '@webtune/objectives';
import { fromFloat32, readSafetensorsBytes, toFloat32, writeSafetensors } from '@webtune/safetensors';
import type { Device } from '@webtune/tensors';

/**
 * A reward model's value head on disk, as LLaMA-Factory and TRL write it beside the adapter or
 * the model: value_head.safetensors with `v_head.summary.weight` [1, hidden] and
 * `v_head.summary.bias` [1].
 */
export const VALUE_HEAD_FILE = 'value_head.safetensors';

/** Writes `head` as value_head.safetensors (F32); returns the file names written. */
export async function saveValueHead(head: ValueHead, sink: ModelFileSink): Promise<string[]> {
  const tensors = [];
  for (const [name, tensor] of [
    [VALUE_HEAD_NAMES.weight, head.weight],
    [VALUE_HEAD_NAMES.bias, head.bias],
  ] as const) {
    const values = await tensor.toArray();
    const data = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    tensors.push({ name, dtype: 'F32' as const, shape: [...tensor.shape], data: fromFloat32(data, 'F32') });
  }
  await sink.writeFile(VALUE_HEAD_FILE, writeSafetensors(tensors, { format: 'pt' }));
  return [VALUE_HEAD_FILE];
}

/**
 * Reads value_head.safetensors from a model or adapter folder onto `device` (f32). With
 * `hiddenSize`, the weight must be [1, hiddenSize]. Throws naming the folder and what is wrong.
 */
export async function loadValueHead(
  device: Device,
  source: ModelFileSource,
  options: { hiddenSize?: number } = {},
): Promise<ValueHead> {
  if (!(await source.exists(VALUE_HEAD_FILE))) {
    throw new Error(`loadValueHead: ${source.location} has no ${VALUE_HEAD_FILE} (not a reward model?)`);
  }
  const file = readSafetensorsBytes(await source.readBytes(VALUE_HEAD_FILE), { fileName: VALUE_HEAD_FILE });
  const entry = (name: string) => {
    const found = file.tensors.find((tensor) => tensor.name === name);
    if (!found) throw new Error(`loadValueHead: ${source.location}/${VALUE_HEAD_FILE} has no ${name}`);
    return found;
  };
  const weight = entry(VALUE_HEAD_NAMES.weight);
  const bias = entry(VALUE_HEAD_NAMES.bias);
  const hidden = options.hiddenSize ?? weight.shape[1];
  const same = (shape: readonly number[], expected: readonly number[]) =>
    shape.length === expected.length && shape.every((size, i) => size === expected[i]);
  if (!same(weight.shape, [1, hidden]) || !same(bias.shape, [1])) {
    throw new Error(
      `loadValueHead: ${source.location}/${VALUE_HEAD_FILE} holds ${VALUE_HEAD_NAMES.weight} [${weight.shape.join(', ')}] and ` +
        `${VALUE_HEAD_NAMES.bias} [${bias.shape.join(', ')}]; expected [1, ${hidden}] and [1]`,
    );
  }
  return {
    weight: device.fromArray(toFloat32(weight), [1, hidden], 'f32'),
    bias: device.fromArray(toFloat32(bias), [1], 'f32'),
  };
}
