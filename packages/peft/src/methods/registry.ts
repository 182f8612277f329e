import type { Module } from '@webtune/nn';
import { BOTTLENECK_METHOD } from '../adapter/bottleneck-method.js';
import { PeftError } from '../errors.js';
import { LORA_METHOD } from '../lora/lora-method.js';
import type { InjectedLayer, MethodConfig, PeftMethod } from './peft-method.js';

/** The methods this package ships, listed explicitly (no registration by import side effects). */
export const BUILT_IN_METHODS: readonly PeftMethod[] = [
  LORA_METHOD as PeftMethod,
  BOTTLENECK_METHOD as PeftMethod,
];

/** peft_type when adapter_config.json has none (PEFT's default). */
const DEFAULT_PEFT_TYPE = 'LORA';

/** The PEFT methods a PeftModel and the adapter files know, by peft_type. */
export class PeftMethodRegistry {
  private readonly methods = new Map<string, PeftMethod>();

  constructor(methods: readonly PeftMethod[] = BUILT_IN_METHODS) {
    for (const method of methods) this.register(method);
  }

  /** Adds a method; a peft_type can be registered once. */
  register<Config extends MethodConfig>(method: PeftMethod<Config>): this {
    if (this.methods.has(method.peftType)) {
      throw new PeftError(`a PEFT method for peft_type ${method.peftType} is already registered`);
    }
    this.methods.set(method.peftType, method as unknown as PeftMethod);
    return this;
  }

  get peftTypes(): string[] {
    return [...this.methods.keys()];
  }

  /** The method of a peft_type; an error lists the known ones. */
  method(peftType: unknown, where = 'adapter config'): PeftMethod {
    const method = typeof peftType === 'string' ? this.methods.get(peftType) : undefined;
    if (!method) {
      throw new PeftError(
        `${where}: peft_type ${JSON.stringify(peftType)} is not supported (${this.peftTypes.join(', ')})`,
      );
    }
    return method;
  }

  /** Parses adapter_config.json with the method its peft_type names (LORA when absent). */
  parseConfig(json: Record<string, unknown>, fileName: string): MethodConfig {
    return this.method(json.peft_type ?? DEFAULT_PEFT_TYPE, fileName).parseConfig(json, fileName);
  }

  /** True for a layer any registered method injects. */
  isLayer(module: Module): module is InjectedLayer {
    for (const method of this.methods.values()) if (method.isLayer(module)) return true;
    return false;
  }
}

/** The registry of the built-in methods (LoRA family, bottleneck adapters). */
export const DEFAULT_METHODS = new PeftMethodRegistry();
