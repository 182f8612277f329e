/** Attributes of `h()`: properties, `on<event>` listeners, `class`, `data-*`, `aria-*` and plain attributes. */
export type Attributes = Record<string, unknown>;
export type Child = Node | string | number | null | undefined | false | Child[];

/** Creates an element: h('button', { type: 'button', onclick }, 'Start'). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value as EventListener);
    } else if (key === 'class') element.className = String(value);
    else if (key === 'style' && typeof value === 'object') Object.assign(element.style, value);
    else if (key in element && !key.includes('-') && key !== 'list') {
      (element as unknown as Record<string, unknown>)[key] = value;
    } else element.setAttribute(key, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

/** Appends children, flattening arrays and skipping empty values. */
export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else
      parent.appendChild(
        typeof child === 'string' || typeof child === 'number'
          ? document.createTextNode(String(child))
          : child,
      );
  }
}

/** Replaces an element's children. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

let uniqueCounter = 0;
/** A document-unique id with a readable prefix. */
export function uniqueId(prefix: string): string {
  uniqueCounter++;
  return `${prefix}-${uniqueCounter}`;
}

/**
 * A labelled form field: the label, the control, and a short help text tied to it with
 * aria-describedby.
 */
export function field(label: string, control: HTMLElement, help?: string): HTMLElement {
  const id = control.id || uniqueId('field');
  control.id = id;
  const helpElement = help ? h('small', { class: 'help', id: `${id}-help` }, help) : null;
  if (helpElement) control.setAttribute('aria-describedby', helpElement.id);
  return h('div', { class: 'field' }, h('label', { htmlFor: id }, label), control, helpElement);
}

/** A number input with bounds. */
export function numberInput(
  name: string,
  value: number,
  options: { min?: number; max?: number; step?: number | 'any' } = {},
): HTMLInputElement {
  return h('input', {
    type: 'number',
    name,
    value: String(value),
    min: options.min === undefined ? undefined : String(options.min),
    max: options.max === undefined ? undefined : String(options.max),
    step: String(options.step ?? 'any'),
    inputMode: 'decimal',
  });
}

/** A select with [value, label] options. */
export function select(name: string, options: [string, string][], value?: string): HTMLSelectElement {
  const element = h(
    'select',
    { name },
    ...options.map(([optionValue, label]) => h('option', { value: optionValue }, label)),
  );
  if (value !== undefined) element.value = value;
  return element;
}

/** Starts a download of bytes under a file name. */
export function downloadBytes(
  name: string,
  bytes: Uint8Array | string,
  type = 'application/octet-stream',
): void {
  const link = downloadLink(name, bytes, type);
  document.body.append(link);
  link.click();
  link.remove();
}

/** A link that downloads bytes as a file; its object URL lives as long as the page. */
export function downloadLink(
  name: string,
  bytes: Uint8Array | string,
  type = 'application/octet-stream',
): HTMLAnchorElement {
  const blob = new Blob([bytes as BlobPart], { type });
  return h('a', { href: URL.createObjectURL(blob), download: name, class: 'download' }, name);
}
