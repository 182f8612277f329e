import { type ConfigError, type RawConfig, resolveConfig } from '@webtune/train';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { h } from '../ui/dom.js';

/*
 * The board's run as a LLaMA-Factory YAML: the keys the worker hands to @webtune/train's planner
 * (the same planner as `webtune train CONFIG.yaml`), shown, copied, downloaded, loaded back, and
 * sent to `webtune webui` by the Remote tab.
 */

/**
 * The YAML text of a run's config, keys in a stable, readable order. The browser keeps a run in
 * its private storage; elsewhere it goes to `saves/<run_name>` unless the config names a folder.
 */
export function runYaml(config: RawConfig): string {
  const withFolder = { ...config, output_dir: config.output_dir ?? `saves/${config.run_name ?? 'run-1'}` };
  const entries = Object.entries(withFolder).filter(([, value]) => value !== undefined && value !== null);
  const order = ['model_name_or_path', 'stage', 'do_train', 'finetuning_type', 'dataset', 'template'];
  entries.sort(([a], [b]) => rank(a, order) - rank(b, order));
  return `# A webtune / LLaMA-Factory run: webtune train this.yaml\n${stringifyYaml(Object.fromEntries(entries))}`;
}

function rank(key: string, order: string[]): number {
  const index = order.indexOf(key);
  return index === -1 ? order.length : index;
}

/**
 * A saved YAML read back: a mapping of LLaMA-Factory keys, checked by the planner's key table
 * (unknown or refused keys are errors naming the key, as `webtune train` reports them).
 */
export function parseRunYaml(text: string, fileName: string): RawConfig {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new Error(`${fileName}: not YAML (${(error as Error).message.split('\n')[0]})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${fileName}: expected a mapping of LLaMA-Factory keys (key: value lines)`);
  }
  const config = value as RawConfig;
  try {
    // output_dir is optional here: the browser keeps the run in its own storage.
    resolveConfig(config, { required: [] });
  } catch (error) {
    if ((error as ConfigError).name === 'ConfigError')
      throw new Error(`${fileName}: ${(error as Error).message}`);
    throw error;
  }
  return config;
}

/**
 * The Train tab's YAML card: a live preview, Copy, Download, and Load a saved YAML (handed to
 * `load`, which spreads its keys over the tabs).
 */
export function runYamlPanel(options: {
  config: () => RawConfig;
  fileName: () => string;
  load: (config: RawConfig, fileName: string) => void;
  fail: (error: Error) => void;
}): { element: HTMLElement; refresh: () => void } {
  const preview = h('pre', { class: 'yaml-preview', tabIndex: 0, 'aria-label': 'The run as YAML' });
  const note = h('p', { class: 'note', 'aria-live': 'polite' });
  const text = () => runYaml(options.config());
  const refresh = () => {
    try {
      preview.textContent = text();
    } catch (error) {
      preview.textContent = `# ${(error as Error).message}`;
    }
  };
  const copy = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text());
          note.textContent = 'Copied.';
        } catch (error) {
          note.textContent = `Could not copy (${(error as Error).message}): select the text instead.`;
        }
      },
    },
    'Copy',
  );
  const download = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        const link = h('a', {
          href: URL.createObjectURL(new Blob([text()], { type: 'application/yaml' })),
          download: options.fileName(),
        });
        document.body.append(link);
        link.click();
        link.remove();
      },
    },
    'Download',
  );
  const input = h('input', { type: 'file', accept: '.yaml,.yml,.json', name: 'run-yaml' });
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    if (!file) return;
    try {
      const config = parseRunYaml(await file.text(), file.name);
      options.load(config, file.name);
      note.textContent = `Loaded ${file.name}.`;
      refresh();
    } catch (error) {
      options.fail(error as Error);
      note.textContent = '';
    } finally {
      input.value = '';
    }
  });
  const element = h(
    'details',
    { class: 'run-yaml' },
    h('summary', {}, 'The run as a LLaMA-Factory YAML'),
    h(
      'p',
      { class: 'help' },
      'What the board hands to the planner, as `webtune train` and LLaMA-Factory read it. model_name_or_path and dataset are what this browser loaded; a server reads them as paths.',
    ),
    preview,
    h(
      'div',
      { class: 'actions' },
      copy,
      download,
      h('label', { class: 'file-button' }, 'Load a saved YAML ', input),
    ),
    note,
  );
  element.addEventListener('toggle', refresh);
  return { element, refresh };
}
