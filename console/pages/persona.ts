import cytoscape from 'cytoscape';
import { api, type NeighboursT, type PersonaRecordT } from '../api.ts';
import { append, errorBox, formatTime, h, renderValue, type Child } from '../dom.ts';
import type { View } from '../view.ts';

function section(title: string, testid: string, ...body: Child[]): HTMLElement {
  return h('section', { class: 'card', 'data-testid': testid }, h('h2', {}, title), ...body);
}

function versionsTable(p: PersonaRecordT): HTMLElement {
  return h('table', { 'data-testid': 'versions' },
    h('thead', {}, h('tr', {}, ...['Version', 'Name', 'Age', 'Occupation', 'Locale', 'Model', 'Indexed', 'Replaced'].map((c) => h('th', {}, c)))),
    h('tbody', {}, ...p.versions.map((v) => h('tr', {},
      h('td', {}, v.version), h('td', {}, v.name), h('td', {}, v.age), h('td', {}, v.occupation), h('td', {}, v.locale), h('td', {}, v.model),
      h('td', {}, formatTime(v.indexedAt)), h('td', {}, v.replacedAt === null ? 'current' : formatTime(v.replacedAt)),
    ))));
}

/**
 * The lattice neighbourhood as a graph: the persona at the root of a breadth-first layout (so the picture is
 * the same every time), related personas by hops, edges labelled with the relation kind, pointing from the
 * persona a related one was derived from. Clicking a persona opens it.
 */
function drawLattice(container: HTMLElement, n: NeighboursT): void {
  const label = (id: string) => {
    const p = n.personas.find((x) => x.id === id);
    return p ? `${p.name}\n${p.occupation}` : id.slice(0, 8);
  };
  const ids = new Set([n.id, ...n.edges.flatMap((e) => [e.from, e.to])]);
  const graph = cytoscape({
    container,
    elements: [
      ...[...ids].map((id) => ({ data: { id, label: label(id) }, classes: id === n.id ? 'focus' : '' })),
      ...n.edges.map((e) => ({ data: { id: `${e.from}>${e.to}`, source: e.from, target: e.to, kind: e.kind } })),
    ],
    layout: { name: 'breadthfirst', roots: [n.id], directed: false, spacingFactor: 1.6, animate: false },
    style: [
      { selector: 'node', style: { label: 'data(label)', 'text-wrap': 'wrap', 'text-max-width': '140px', 'font-size': 10, 'text-valign': 'bottom', 'text-margin-y': 4, 'background-color': '#6b8fb5', width: 18, height: 18 } },
      { selector: 'node.focus', style: { 'background-color': '#c0504d', width: 26, height: 26, 'font-weight': 'bold' } },
      { selector: 'edge', style: { label: 'data(kind)', 'font-size': 9, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', width: 1.5, 'line-color': '#9aa7b4', 'target-arrow-color': '#9aa7b4', 'text-background-color': '#ffffff', 'text-background-opacity': 1, 'text-background-padding': '2px' } },
    ],
    userZoomingEnabled: true,
    boxSelectionEnabled: false,
  });
  graph.on('tap', 'node', (event) => {
    const id = String(event.target.id());
    if (id !== n.id) location.hash = `#/persona/${id}`;
  });
  container.dataset.nodes = String(graph.nodes().length);
  container.dataset.edges = String(graph.edges().length);
  container.dataset.state = 'ready';
}

async function lattice(view: View, id: string, depth: number, holder: HTMLElement): Promise<void> {
  const graph = h('div', { class: 'graph', 'data-testid': 'lattice-graph', 'data-state': 'loading' });
  const depthSelect = h('select', { 'data-testid': 'lattice-depth' }, ...[1, 2, 3, 4, 5, 6].map((d) => h('option', { value: d, selected: d === depth }, `${d} hop${d > 1 ? 's' : ''}`)));
  depthSelect.addEventListener('change', () => void lattice(view, id, Number(depthSelect.value), holder));
  const summary = h('p', { class: 'muted', 'data-testid': 'lattice-summary' });
  holder.replaceChildren(h('h2', {}, 'Lattice neighbourhood'), h('label', {}, 'Depth ', depthSelect), summary, graph);
  try {
    const n = await api.neighbours(id, depth, view.signal);
    summary.textContent = n.edges.length === 0
      ? 'No relation edges: this persona was not expanded and was not derived from another one.'
      : `${n.edges.length} relation edge${n.edges.length > 1 ? 's' : ''} within ${depth} hop${depth > 1 ? 's' : ''}, ${n.personas.length} personas.`;
    drawLattice(graph, n);
  } catch (error) {
    if (view.signal.aborted) return;
    graph.replaceWith(errorBox(error));
  }
}

export async function personaPage(view: View, id: string, params: URLSearchParams): Promise<void> {
  const status = h('div', { 'data-testid': 'persona', 'data-state': 'loading' }, h('p', { class: 'muted' }, 'Loading…'));
  append(view.root, status);
  let p: PersonaRecordT;
  try {
    p = await api.persona(id, view.signal);
  } catch (error) {
    if (view.signal.aborted) return;
    status.replaceChildren(errorBox(error));
    status.dataset.state = 'error';
    return;
  }
  const latticeHolder = h('section', { class: 'card', 'data-testid': 'lattice' });
  const similar = h('section', { class: 'card', 'data-testid': 'similar' }, h('h2', {}, 'Similar personas'));
  status.replaceChildren(
    h('h1', { 'data-testid': 'persona-name' }, p.name),
    h('p', { class: 'lead' }, `${p.age} · ${p.occupation} · ${p.locale} · version ${p.version} · ${p.mode} (${p.model})`),
    h('p', { 'data-testid': 'persona-description' }, p.description),
    h('div', { class: 'grid' },
      section('Attributes', 'attributes', renderValue(p.attributes)),
      section('Provenance', 'provenance', renderValue({ ...p.provenance, createdAt: formatTime(p.provenance.createdAt), seedId: p.seedId, embeddingModel: p.embeddingModel, indexedAt: formatTime(p.indexedAt), cluster: p.cluster })),
      section('Lineage', 'lineage', renderValue(p.lineage)),
      section('Validation', 'validation', renderValue(p.validation)),
    ),
    h('h2', {}, 'Modalities'),
    h('div', { class: 'grid', 'data-testid': 'modalities' }, ...Object.entries(p.modalities).map(([name, value]) => section(name, `modality-${name}`, renderValue(value)))),
    section('Versions', 'versions-card', versionsTable(p)),
    latticeHolder,
    similar,
  );
  status.dataset.state = 'ready';
  const depth = Math.min(6, Math.max(1, Number(params.get('depth') ?? 2) || 2));
  await Promise.all([
    lattice(view, id, depth, latticeHolder),
    api.similar(id, 5, view.signal).then(
      (hits) => append(similar, h('ul', {}, ...hits.items.map((s) => h('li', {}, h('a', { href: `#/persona/${s.id}` }, s.name), ` ${s.occupation}, ${s.locale} (${s.score.toFixed(3)})`)))),
      (error: unknown) => { if (!view.signal.aborted) similar.append(errorBox(error)); },
    ),
  ]);
}
