import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';
import { api, type FidelityT, type ValidationSeriesT } from '../api.ts';
import { append, errorBox, formatTime, h } from '../dom.ts';
import type { View } from '../view.ts';

// Only the pieces the bar charts use, so the bundle leaves the rest of Chart.js out.
Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, Tooltip);

interface Dataset {
  label: string;
  data: number[];
  color: string;
}

interface Series {
  name: string;
  title: string;
  labels: string[];
  /** One dataset is a plain bar chart; several are grouped bars (observed beside target) or a stack. */
  datasets: Dataset[];
  stacked?: boolean;
  /** Long labels (occupations, clusters) read better as horizontal bars. */
  horizontal?: boolean;
  /** Shares (0 to 1) rather than counts. */
  shares?: boolean;
}

const BAR = '#6b8fb5';
/** Rejection reasons in warm tones after the two passing outcomes, so a stack reads good-to-bad from the bottom. */
const OUTCOME_COLOURS = ['#4f9a6a', '#a9c77a', '#d9534f', '#e8923a', '#c0392b', '#8e44ad', '#b8860b', '#7f8c8d'];

const counts = (name: string, title: string, labels: string[], data: number[], horizontal = false): Series =>
  ({ name, title, labels, datasets: [{ label: 'personas', data, color: BAR }], horizontal });

function chart(s: Series, charts: Chart[]): HTMLElement {
  const canvas = h('canvas', { 'aria-label': s.title, role: 'img' });
  const figure = h('figure', { class: 'card chart', 'data-testid': `chart-${s.name}`, 'data-state': 'loading' }, h('figcaption', {}, s.title));
  if (s.labels.length === 0) {
    append(figure, h('p', { class: 'muted' }, 'nothing yet'));
    figure.dataset.state = 'empty';
    return figure;
  }
  append(figure, h('div', { class: 'canvas-box' }, canvas));
  // Drawn once the figure is in the page, so Chart.js measures its real size; no animation, so what a screenshot shows is final.
  queueMicrotask(() => {
    charts.push(new Chart(canvas, {
      type: 'bar',
      data: { labels: s.labels, datasets: s.datasets.map((d) => ({ label: d.label, data: d.data, backgroundColor: d.color })) },
      options: {
        animation: false, maintainAspectRatio: false, indexAxis: s.horizontal ? 'y' : 'x',
        plugins: { legend: { display: s.datasets.length > 1 } },
        scales: {
          // Every value of a horizontal chart named: Chart.js would skip labels that do not fit, and those charts are read by value.
          [s.horizontal ? 'y' : 'x']: { stacked: s.stacked ?? false, ticks: { autoSkip: !s.horizontal } },
          [s.horizontal ? 'x' : 'y']: { beginAtZero: true, stacked: s.stacked ?? false, ...(s.shares ? {} : { ticks: { precision: 0 } }) },
        },
      },
    }));
    figure.dataset.bars = String(s.labels.length);
    figure.dataset.series = String(s.datasets.length);
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
    const [stats, { clusters }, fidelity, validation] = await Promise.all([
      api.stats(view.signal), api.clusters(0, view.signal), api.fidelity(view.signal), api.validation(view.signal),
    ]);
    const figures: Series[] = [
      counts('age', 'Age (ten-year bins)', stats.age.histogram.map((b) => `${b.from}–${b.to}`), stats.age.histogram.map((b) => b.count)),
      counts('occupations', 'Most common occupations', stats.topOccupations.map((o) => o.value), stats.topOccupations.map((o) => o.count), true),
      counts('locales', 'Most common locales', stats.topLocales.map((o) => o.value), stats.topLocales.map((o) => o.count), true),
      counts('clusters', 'Cluster sizes (labelled by their most common occupations)', clusters.map((c) => short(`#${c.cluster} ${c.label}`)), clusters.map((c) => c.size), true),
      counts('mode', 'By generation mode', entries(stats.byMode).map((e) => e[0]), entries(stats.byMode).map((e) => e[1])),
      counts('model', 'By model', entries(stats.byModel).map((e) => e[0]), entries(stats.byModel).map((e) => e[1])),
      counts('depth', 'By lattice depth', entries(stats.byDepth).map((e) => e[0]), entries(stats.byDepth).map((e) => e[1])),
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
      validationSection(validation, charts),
      fidelitySection(fidelity, charts),
    );
    holder.dataset.state = 'ready';
  } catch (error) {
    if (view.signal.aborted) return;
    holder.replaceChildren(errorBox(error));
    holder.dataset.state = 'error';
  }
}

/** Passed as written, repaired, and rejected by reason, stacked per time bucket. */
function validationSection(v: ValidationSeriesT, charts: Chart[]): HTMLElement {
  const series: Dataset[] = [
    { label: 'passed', data: v.buckets.map((b) => b.passed), color: OUTCOME_COLOURS[0] ?? BAR },
    { label: 'repaired', data: v.buckets.map((b) => b.repaired), color: OUTCOME_COLOURS[1] ?? BAR },
    ...v.reasons.map((reason, i) => ({ label: `rejected: ${reason}`, data: v.buckets.map((b) => b.rejected[reason] ?? 0), color: OUTCOME_COLOURS[2 + (i % (OUTCOME_COLOURS.length - 2))] ?? BAR })),
  ];
  const title = `Validation outcomes per ${v.bucketSeconds} s, seen by this API since ${v.since > 0 ? formatTime(v.since) : 'the topics began'}`;
  return h('section', {}, h('h2', {}, 'Validation over time'),
    chart({ name: 'validation', title, labels: v.buckets.map((b) => formatTime(b.start).slice(5, 19)), datasets: series, stacked: true }, charts));
}

/** Each attribute's observed shares beside the profile's target, then the pairs of attributes whose joint is off. */
function fidelitySection(f: FidelityT, charts: Chart[]): HTMLElement {
  const heading = h('h2', {}, `Against the profile's target: ${f.profile} ${f.profileVersion}, ${f.personas} personas${f.truncated ? ' (the first ones only)' : ''}`);
  const flagged = f.pairs.filter((p) => p.flagged);
  const pairs = h('table', { 'data-testid': 'fidelity-pairs' },
    h('thead', {}, h('tr', {}, h('th', {}, 'pair'), h('th', {}, 'TVD'), h('th', {}, 'chi-square'), h('th', {}, 'critical'))),
    h('tbody', {}, ...flagged.map((p) => h('tr', { 'data-testid': 'flagged-pair' },
      h('td', {}, p.pair.join(' × ')), h('td', {}, p.tvd), h('td', {}, p.chiSquare ?? '∞'), h('td', {}, p.critical)))));
  return h('section', { 'data-testid': 'fidelity' }, heading,
    h('div', { class: 'charts' }, ...f.marginals.map((m) => chart({
      name: `fidelity-${m.attribute}`, title: `${m.attribute}: TVD ${m.tvd}, coverage ${m.coverage}`, labels: m.values.map((v) => short(v.value)), shares: true,
      datasets: [{ label: 'observed', data: m.values.map((v) => v.observed), color: BAR }, { label: 'target', data: m.values.map((v) => v.target), color: '#c9c9c9' }],
      horizontal: true,
    }, charts))),
    h('h3', {}, `Pairs of attributes whose joint is off: ${flagged.length} of ${f.pairs.length} flagged (chi-square significant at 0.001 and TVD ≥ 0.05)`),
    flagged.length > 0 ? pairs : h('p', { class: 'muted', 'data-testid': 'fidelity-pairs' }, 'none flagged'));
}
