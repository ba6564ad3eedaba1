import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from 'chart.js';
import { api } from '../api.ts';
import { append, errorBox, h } from '../dom.ts';
import type { View } from '../view.ts';

// Only the pieces the bar charts use, so the bundle leaves the rest of Chart.js out.
Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

interface Series {
  name: string;
  title: string;
  labels: string[];
  counts: number[];
  /** Long labels (occupations, clusters) read better as horizontal bars. */
  horizontal?: boolean;
}

function chart(s: Series, charts: Chart[]): HTMLElement {
  const canvas = h('canvas', { 'aria-label': s.title, role: 'img' });
  const figure = h('figure', { class: 'card chart', 'data-testid': `chart-${s.name}`, 'data-state': 'loading' }, h('figcaption', {}, s.title));
  if (s.counts.length === 0) {
    append(figure, h('p', { class: 'muted' }, 'nothing yet'));
    figure.dataset.state = 'empty';
    return figure;
  }
  append(figure, h('div', { class: 'canvas-box' }, canvas));
  // Drawn once the figure is in the page, so Chart.js measures its real size; no animation, so what a screenshot shows is final.
  queueMicrotask(() => {
    charts.push(new Chart(canvas, {
      type: 'bar',
      data: { labels: s.labels, datasets: [{ label: 'personas', data: s.counts, backgroundColor: '#6b8fb5' }] },
      options: {
        animation: false, maintainAspectRatio: false, indexAxis: s.horizontal ? 'y' : 'x',
        scales: { [s.horizontal ? 'x' : 'y']: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    }));
    figure.dataset.bars = String(s.counts.length);
    figure.dataset.state = 'ready';
  });
  return figure;
}

/** Chart.js neither wraps nor shortens axis labels: a cluster's label (three occupations) is cut to fit beside its bar. */
const short = (label: string) => (label.length > 40 ? `${label.slice(0, 39)}…` : label);

const entries = (m: Record<string, number>) => Object.entries(m).sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true }));

export async function populationPage(view: View): Promise<void> {
  const holder = h('div', { 'data-testid': 'population', 'data-state': 'loading' });
  append(view.root, h('h1', {}, 'Population'), holder);
  const charts: Chart[] = [];
  view.signal.addEventListener('abort', () => charts.forEach((c) => c.destroy()));
  try {
    const [stats, { clusters }] = await Promise.all([api.stats(view.signal), api.clusters(0, view.signal)]);
    const figures: Series[] = [
      { name: 'age', title: 'Age (ten-year bins)', labels: stats.age.histogram.map((b) => `${b.from}–${b.to}`), counts: stats.age.histogram.map((b) => b.count) },
      { name: 'occupations', title: 'Most common occupations', labels: stats.topOccupations.map((o) => o.value), counts: stats.topOccupations.map((o) => o.count), horizontal: true },
      { name: 'locales', title: 'Most common locales', labels: stats.topLocales.map((o) => o.value), counts: stats.topLocales.map((o) => o.count), horizontal: true },
      { name: 'clusters', title: 'Cluster sizes (labelled by their most common occupations)', labels: clusters.map((c) => short(`#${c.cluster} ${c.label}`)), counts: clusters.map((c) => c.size), horizontal: true },
      { name: 'mode', title: 'By generation mode', labels: entries(stats.byMode).map((e) => e[0]), counts: entries(stats.byMode).map((e) => e[1]) },
      { name: 'model', title: 'By model', labels: entries(stats.byModel).map((e) => e[0]), counts: entries(stats.byModel).map((e) => e[1]) },
      { name: 'depth', title: 'By lattice depth', labels: entries(stats.byDepth).map((e) => e[0]), counts: entries(stats.byDepth).map((e) => e[1]) },
    ];
    const figure = (label: string, value: string | number, testid: string) => h('div', { class: 'figure', 'data-testid': testid }, h('strong', {}, value), h('span', {}, label));
    holder.replaceChildren(
      h('div', { class: 'figures' },
        figure('personas', stats.personas, 'figure-personas'),
        figure('clusters', stats.clusters, 'figure-clusters'),
        figure('clustered', stats.clustered, 'figure-clustered'),
        figure('mean age', stats.age.mean === null ? '—' : stats.age.mean.toFixed(1), 'figure-age'),
        figure('age range', stats.age.min === null ? '—' : `${stats.age.min}–${stats.age.max}`, 'figure-age-range'),
      ),
      h('div', { class: 'charts' }, ...figures.map((s) => chart(s, charts))),
    );
    holder.dataset.state = 'ready';
  } catch (error) {
    if (view.signal.aborted) return;
    holder.replaceChildren(errorBox(error));
    holder.dataset.state = 'error';
  }
}
