/** What h() accepts as a child: nodes, text (always as text, never parsed as HTML), or nothing. */
export type Child = Node | string | number | null | undefined | false;

type Props = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

/**
 * Builds an element. Attributes are set as attributes and `on*` functions become listeners; text goes in as
 * text nodes, so a persona's description can never inject markup into the page.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (value === true) el.setAttribute(name, '');
    else if (value !== undefined && value !== false) el.setAttribute(name, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** A value of any shape as nested definition lists: attributes, modalities and validation records vary by mode. */
export function renderValue(value: unknown): Child {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, '—');
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) return value.length === 0 ? h('span', { class: 'muted' }, 'none') : value.map(String).join(', ');
    return h('ol', {}, ...value.map((v) => h('li', {}, renderValue(v))));
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return h('span', { class: 'muted' }, 'none');
    return h('dl', {}, ...entries.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, renderValue(v))]));
  }
  return String(value);
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** An error box with the API's code and message (e.g. a filter clause it refused). */
export function errorBox(error: unknown): HTMLElement {
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'ERROR';
  const message = error instanceof Error ? error.message : String(error);
  return h('div', { class: 'error', 'data-testid': 'error', role: 'alert' }, h('strong', {}, code), ' ', message);
}
