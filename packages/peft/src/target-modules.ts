import { Linear, type Module } from '@webtune/nn';
import { PeftError } from './errors.js';

/*
 * Which modules an adapter goes into, by Hugging Face PEFT's rules (peft/tuners/tuners_utils.py,
 * check_target_module_exists), written once here for every method:
 *
 * - a string is a regular expression that must match the whole module name (Python re.fullmatch);
 * - a list matches a name equal to an entry, or ending with "." + an entry; only in this case
 *   does `layers_to_transform` restrict the match to the layer indices it lists;
 * - `exclude_modules` (same two forms) and `modules_to_save` win over any target;
 * - `all-linear` (PEFT) and `all` (LLaMA-Factory's lora_target) mean every linear layer but the
 *   output head. They are resolved to the suffixes of those layers (q_proj, ..., down_proj), as
 *   LLaMA-Factory and PEFT up to 0.13 did, so `layers_to_transform` still applies to them.
 */

/** PEFT's `target_modules` / `exclude_modules`: a full-match regular expression, or names and suffixes. */
export type ModuleSelector = string | readonly string[];

/** The matching fields of an adapter config, in PEFT's meaning. */
export interface TargetSelection {
  targetModules: ModuleSelector | null;
  excludeModules?: ModuleSelector | null;
  /** Layer indices to adapt (with a list of targets only). */
  layersToTransform?: number | readonly number[] | null;
  /** Name of the layer list (`layers`), when the default rule picks the wrong number. */
  layersPattern?: string | readonly string[] | null;
  /** Modules trained and saved whole; never adapted. */
  modulesToSave?: readonly string[] | null;
}

/** The selection keys of a PEFT config (LoRA, Adapter), spelled as in adapter_config.json. */
export interface SelectionKeys {
  target_modules: ModuleSelector | null;
  exclude_modules?: ModuleSelector | null;
  layers_to_transform?: number | readonly number[] | null;
  layers_pattern?: string | readonly string[] | null;
  modules_to_save?: readonly string[] | null;
}

/** The target selection a PEFT config's keys make. */
export function targetSelection(config: SelectionKeys): TargetSelection {
  return {
    targetModules: config.target_modules,
    excludeModules: config.exclude_modules,
    layersToTransform: config.layers_to_transform,
    layersPattern: config.layers_pattern,
    modulesToSave: config.modules_to_save,
  };
}

/** The outcome for one module name. */
export type TargetMatch = 'target' | 'excluded' | 'none';

/** Target shorthands meaning every linear layer but the output head. */
export const ALL_LINEAR_SHORTHANDS = ['all-linear', 'all'] as const;

const compiled = new Map<string, RegExp>();

/**
 * A Python regular expression as a JavaScript one anchored at both ends (re.fullmatch). Named
 * groups (?P<name>...) and (?P=name) and the anchors \A and \Z are translated; the rest of the
 * common syntax means the same in both. Throws a PeftError for a pattern neither accepts.
 */
export function fullMatchPattern(pattern: string): RegExp {
  let regex = compiled.get(pattern);
  if (!regex) {
    const translated = pattern
      .replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>')
      .replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, '\\k<$1>')
      .replace(/\\A/g, '^')
      .replace(/\\Z/g, '$');
    try {
      regex = new RegExp(`^(?:${translated})$`);
    } catch (error) {
      throw new PeftError(
        `target pattern ${JSON.stringify(pattern)} is not a valid regular expression: ${String(error)}`,
      );
    }
    compiled.set(pattern, regex);
  }
  return regex;
}

/** Whether a list selector names `key` exactly or as a suffix after a dot. */
function listMatches(names: readonly string[], key: string): boolean {
  return names.some((name) => key === name || key.endsWith(`.${name}`));
}

function selectorMatches(selector: ModuleSelector, key: string): boolean {
  return typeof selector === 'string' ? fullMatchPattern(selector).test(key) : listMatches(selector, key);
}

/** Whether `key` is, or lies inside, a module listed in modules_to_save (PEFT's exclusion rule). */
export function isModuleToSave(modulesToSave: readonly string[] | null | undefined, key: string): boolean {
  if (!modulesToSave) return false;
  return modulesToSave.some((name) => new RegExp(`^(?:.*\\.)?(?:${name})(?:$|\\.)`).test(key));
}

/**
 * The index of the layer a module belongs to: the first number that follows the layer list's
 * name (`layers_pattern`), or by default the first `.<name>.<number>.` in the path.
 */
export function layerIndexOf(key: string, layersPattern?: string | readonly string[] | null): number | null {
  const patterns =
    layersPattern == null ? [] : typeof layersPattern === 'string' ? [layersPattern] : layersPattern;
  let match: RegExpMatchArray | null = null;
  if (patterns.length === 0 || (patterns.length === 1 && patterns[0] === '')) {
    match = key.match(/^.*?\.[^.]*\.(\d+)\./);
  } else {
    for (const pattern of patterns) {
      match = key.match(new RegExp(`^(?:|.*?\\.)${pattern}\\.(\\d+)\\.`));
      if (match) break;
    }
  }
  return match ? Number(match[1]) : null;
}

/** Whether the module called `key` gets the adapter, is excluded from it, or is not named. */
export function matchTarget(selection: TargetSelection, key: string): TargetMatch {
  const { excludeModules, targetModules } = selection;
  if (excludeModules && (typeof excludeModules === 'string' || excludeModules.length > 0)) {
    if (selectorMatches(excludeModules, key)) return 'excluded';
  }
  if (isModuleToSave(selection.modulesToSave, key)) return 'excluded';
  if (targetModules == null) return 'none';
  if (typeof targetModules === 'string') return fullMatchPattern(targetModules).test(key) ? 'target' : 'none';
  if (targetModules.includes(key)) return 'target';
  if (!listMatches(targetModules, key)) return 'none';
  const layers = selection.layersToTransform;
  const restricted = layers != null && (typeof layers === 'number' || layers.length > 0);
  if (!restricted) return 'target';
  const index = layerIndexOf(key, selection.layersPattern);
  if (index === null) return 'none';
  const wanted = typeof layers === 'number' ? index === layers : layers.includes(index);
  return wanted ? 'target' : 'none';
}

/**
 * PEFT's get_pattern_key: the first key of `rank_pattern` / `alpha_pattern` that matches the end
 * of the module name after a dot (or the whole name), read as a regular expression; null if none.
 */
export function patternKey(patternKeys: Iterable<string>, key: string): string | null {
  for (const pattern of patternKeys) {
    let regex: RegExp;
    try {
      regex = new RegExp(`^(?:.*\\.)?(?:${pattern})$`);
    } catch (error) {
      throw new PeftError(
        `pattern ${JSON.stringify(pattern)} is not a valid regular expression: ${String(error)}`,
      );
    }
    if (regex.test(key)) return pattern;
  }
  return null;
}

/** Whether a target selector is one of the all-linear shorthands. */
export function isAllLinear(selector: ModuleSelector | null | undefined): boolean {
  if (selector == null) return false;
  const single = typeof selector === 'string' ? selector : selector.length === 1 ? selector[0] : null;
  return single !== null && (ALL_LINEAR_SHORTHANDS as readonly string[]).includes(single.toLowerCase());
}

/**
 * A module of the base model as adapters see it: `name` is its Hugging Face name (what matching,
 * rank_pattern and adapter files use), `path` where it sits now. They differ below a wrapper: a
 * LoRA layer inside a block that an adapter block wraps sits at
 * `model.layers.0.self_attn.base_layer.q_proj` but is still `model.layers.0.self_attn.q_proj`.
 */
export interface BaseModule {
  name: string;
  path: string;
  module: Module;
}

/** Whether a module is a wrapper this package injected (LoRA layer, adapter block, modules_to_save). */
export function isAdapterWrapper(module: Module): boolean {
  return (module as { adapterWrapper?: boolean }).adapterWrapper === true;
}

/** The child of a wrapper that holds the wrapped module (`base_layer`, `original_module`). */
function wrappedChild(module: Module): string | null {
  return isAdapterWrapper(module)
    ? (module as unknown as { wrappedChildName: string }).wrappedChildName
    : null;
}

/**
 * Every module of the base model, depth first, wrappers standing for the module they wrap: a
 * wrapper is listed under the wrapped module's name, the wrapped module itself is not listed,
 * its children are (through the wrapper's `base_layer`), and the adapter's own parts (lora_A,
 * adapter copies) never are.
 */
export function* baseModules(root: Module, name = '', path = ''): Generator<BaseModule> {
  if (name) yield { name, path, module: root };
  let children = root.namedChildren();
  let childPath = path;
  const wrapped = wrappedChild(root);
  if (wrapped !== null) {
    // Skip the wrapper's own parts; continue inside the wrapped module, renamed.
    let inner = root.child(wrapped);
    childPath = path ? `${path}.${wrapped}` : wrapped;
    while (isAdapterWrapper(inner)) {
      const next = wrappedChild(inner)!;
      childPath = `${childPath}.${next}`;
      inner = inner.child(next);
    }
    children = inner.namedChildren();
  }
  for (const [childName, child] of children) {
    yield* baseModules(
      child,
      name ? `${name}.${childName}` : childName,
      childPath ? `${childPath}.${childName}` : childName,
    );
  }
}

/**
 * The last name segment of every linear layer of `model` except the output head, sorted: what
 * `all-linear` and `all` stand for. Adapter layers that wrap a linear count as that linear.
 */
export function linearSuffixes(
  model: Module,
  isLinear: (module: Module) => boolean = isLinearModule,
): string[] {
  const suffixes = new Set<string>();
  for (const { name, module } of baseModules(model)) {
    if (name === OUTPUT_HEAD || !isLinear(module)) continue;
    suffixes.add(name.slice(name.lastIndexOf('.') + 1));
  }
  return [...suffixes].sort();
}

/** The output head of a causal LM (excluded from all-linear). */
export const OUTPUT_HEAD = 'lm_head';

/** A plain nn Linear, or an adapter layer that stands in for one. */
export function isLinearModule(module: Module): boolean {
  return module instanceof Linear || (module as { wrapsLinear?: boolean }).wrapsLinear === true;
}

/**
 * The modules of `model` that receive an adapter under `selection`, in model order, matched by
 * their base names. `accept` says which modules the method can adapt; a matched module it
 * refuses is an error naming the module (PEFT: "Target module ... is not supported"). Throws a
 * PeftError when nothing matches, with examples of the model's module names.
 */
export function findTargets(
  model: Module,
  selection: TargetSelection,
  accept: (module: Module, name: string) => boolean,
  what = 'target_modules',
): BaseModule[] {
  const found: BaseModule[] = [];
  const names: string[] = [];
  let excluded = 0;
  for (const entry of baseModules(model)) {
    const { name, module } = entry;
    names.push(name);
    const match = matchTarget(selection, name);
    if (match === 'excluded') excluded++;
    if (match !== 'target') continue;
    if (!accept(module, name)) {
      throw new PeftError(
        `${what} matched "${name}" (a ${module.constructor.name}), which this method cannot adapt; ` +
          'make the selection more specific (a list of suffixes such as ["q_proj", "v_proj"] or a full-match pattern)',
      );
    }
    found.push(entry);
  }
  if (found.length === 0) {
    const examples = names.filter((n) => /\.\d+\./.test(n)).slice(0, 6);
    throw new PeftError(
      `${what} ${JSON.stringify(selection.targetModules)} matched no module of the model` +
        (excluded > 0 ? ` (${excluded} were excluded by exclude_modules or modules_to_save)` : '') +
        `; module names look like ${examples.join(', ') || names.slice(0, 6).join(', ')}. ` +
        'A string is a regular expression that must match the whole name; a list matches names and suffixes.',
    );
  }
  return found;
}
