import { api, type Filters, type HitsT, type ListPageT } from '../api.ts';
import { append, errorBox, h } from '../dom.ts';
import type { View } from '../view.ts';

type Row = HitsT['items'][number] | ListPageT['items'][number];

/** The search form's state, kept in the address (#/search?text=...&where=...) so back, reload and links work. */
function readFilters(params: URLSearchParams): Filters {
  const mode = params.get('mode');
  const depth = params.get('depth');
  const cluster = params.get('cluster');
  return {
    ...(params.get('where') ? { where: params.get('where') ?? '' } : {}),
    ...(mode === 'LLM' || mode === 'SAMPLER' ? { mode } : {}),
    ...(depth ? { depth: Number(depth) } : {}),
    ...(cluster ? { cluster: Number(cluster) } : {}),
  };
}

function resultsTable(rows: readonly Row[], scored: boolean): HTMLElement {
  return h('table', { 'data-testid': 'results' },
    h('thead', {}, h('tr', {}, ...['Name', 'Age', 'Occupation', 'Locale', 'Mode', 'Cluster', ...(scored ? ['Score'] : [])].map((c) => h('th', {}, c)))),
    h('tbody', {}, ...rows.map((p) => h('tr', { 'data-testid': 'result' },
      h('td', {}, h('a', { href: `#/persona/${p.id}` }, p.name)),
      h('td', {}, p.age), h('td', {}, p.occupation), h('td', {}, p.locale), h('td', {}, p.mode),
      h('td', {}, p.cluster ?? '—'),
      scored && 'score' in p ? h('td', {}, p.score.toFixed(3)) : null,
    ))));
}

export async function searchPage(view: View, params: URLSearchParams): Promise<void> {
  const text = params.get('text') ?? '';
  const filters = readFilters(params);
  const limit = Math.min(100, Math.max(1, Number(params.get('limit') ?? 20) || 20));
  const field = (name: string, label: string, input: HTMLElement, hint?: string) => h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', {}, hint) : null);
  const form = h('form', { class: 'search', 'data-testid': 'search-form' },
    field('text', 'Text', h('input', { name: 'text', type: 'search', value: text, placeholder: 'a nurse who coaches chess', 'data-testid': 'search-text' }), 'semantic search; empty lists every persona'),
    field('where', 'Where', h('input', { name: 'where', value: filters.where ?? '', placeholder: 'occupation=nurse,age>=30', 'data-testid': 'search-where' }), 'clauses attribute op value, comma-separated, all must hold (= != >= <= > <)'),
    field('mode', 'Mode', h('select', { name: 'mode', 'data-testid': 'search-mode' }, ...['', 'LLM', 'SAMPLER'].map((m) => h('option', { value: m, selected: filters.mode === m || (m === '' && !filters.mode) }, m || 'any')))),
    field('depth', 'Lattice depth', h('input', { name: 'depth', type: 'number', min: 0, max: 100, value: filters.depth ?? '' })),
    field('cluster', 'Cluster', h('input', { name: 'cluster', type: 'number', min: 0, value: filters.cluster ?? '' })),
    field('limit', 'Limit', h('input', { name: 'limit', type: 'number', min: 1, max: 100, value: limit })),
    h('button', { type: 'submit', 'data-testid': 'search-submit' }, 'Search'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (typeof v === 'string' && v.trim() !== '') q.set(k, v.trim());
    // The same address twice would not fire hashchange: render again ourselves.
    const next = `#/search?${q.toString()}`;
    if (location.hash === next) view.rerender();
    else location.hash = next;
  });
  const results = h('section', { 'data-testid': 'search-results', 'data-state': 'loading' });
  append(view.root, h('h1', {}, 'Search personas'), form, results);

  try {
    if (text) {
      const hits = await api.search(text, filters, limit, view.signal);
      append(results, h('p', { class: 'muted' }, `${hits.items.length} nearest by meaning`), resultsTable(hits.items, true));
    } else {
      let page = await api.list(filters, limit, undefined, view.signal);
      const rows = [...page.items];
      const table = h('div', {}, resultsTable(rows, false));
      const more = h('button', { type: 'button', 'data-testid': 'more' }, 'More');
      more.addEventListener('click', () => {
        void (async () => {
          page = await api.list(filters, limit, page.nextCursor ?? undefined, view.signal);
          rows.push(...page.items);
          table.replaceChildren(resultsTable(rows, false));
          if (!page.nextCursor) more.remove();
        })().catch((error: unknown) => results.append(errorBox(error)));
      });
      append(results, h('p', { class: 'muted' }, 'personas in id order'), table, page.nextCursor ? more : null);
    }
    results.dataset.state = 'ready';
  } catch (error) {
    if (view.signal.aborted) return;
    results.append(errorBox(error));
    results.dataset.state = 'error';
  }
}
