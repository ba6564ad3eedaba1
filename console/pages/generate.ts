import { api, type JobT, type PreviewT } from '../api.ts';
import { append, errorBox, formatTime, h } from '../dom.ts';
import type { View } from '../view.ts';

/** How often a job's page asks for its progress; the observer's counts move with every event, so a second is live enough. */
const POLL_MS = 1000;

function seedsOf(textarea: HTMLTextAreaElement): string[] {
  return textarea.value.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

function previewView(p: PreviewT): HTMLElement {
  return h('div', { 'data-testid': 'preview-result' },
    h('h2', {}, `Preview: ${p.validated.length} passed, ${p.rejected.length} rejected${p.refused.length ? `, ${p.refused.length} lines refused` : ''}`),
    ...p.validated.map((v) => h('article', { class: 'card', 'data-testid': 'preview-persona' },
      h('h3', {}, `${v.name}, ${v.age}`), h('p', { class: 'lead' }, `${v.occupation} · ${v.locale} · ${v.mode} (${v.model})`), h('p', {}, v.description),
      v.repaired.length ? h('p', { class: 'muted' }, `repaired: ${v.repaired.join(', ')}`) : null)),
    ...p.rejected.map((r) => h('article', { class: 'card rejected', 'data-testid': 'preview-rejected' },
      h('h3', {}, `rejected ${r.id.slice(0, 12)}`), h('ul', {}, ...r.reasons.map((x) => h('li', {}, h('code', {}, x.code), ` ${x.message}`))))),
    ...p.refused.map((r) => h('p', { class: 'error' }, `line ${r.line}: ${r.reason} (${r.detail})`)),
  );
}

export function generatePage(view: View): void {
  const seeds = h('textarea', { rows: 8, 'data-testid': 'seeds', placeholder: 'One seed text per line: a forum post, a job ad, a recipe…' });
  const out = h('section', { 'data-testid': 'generate-output' });
  const run = (what: () => Promise<void>) => () => {
    out.replaceChildren(h('p', { class: 'muted' }, 'Working…'));
    what().catch((error: unknown) => { if (!view.signal.aborted) out.replaceChildren(errorBox(error)); });
  };
  const previewButton = h('button', { type: 'button', 'data-testid': 'preview' }, 'Preview (up to 5, nothing stored)');
  previewButton.addEventListener('click', run(async () => out.replaceChildren(previewView(await api.preview(seedsOf(seeds).slice(0, 5), view.signal)))));
  const startButton = h('button', { type: 'button', 'data-testid': 'start-job' }, 'Start job');
  startButton.addEventListener('click', run(async () => {
    const job = await api.submitJob(seedsOf(seeds), view.signal);
    location.hash = `#/jobs/${job.id}`;
  }));
  const count = h('input', { type: 'number', min: 1, max: 10_000, value: 10, 'data-testid': 'sample-count' });
  const profile = h('input', { placeholder: 'the configured default', pattern: '[a-z0-9_-]{1,64}', 'data-testid': 'sample-profile' });
  const where = h('input', { placeholder: 'age>=30,occupation=nurse', 'data-testid': 'sample-where' });
  const sampleButton = h('button', { type: 'button', 'data-testid': 'start-sample-job' }, 'Start sampled job');
  sampleButton.addEventListener('click', run(async () => {
    const job = await api.submitSampleJob({
      count: Number(count.value),
      ...(profile.value.trim() ? { profile: profile.value.trim() } : {}),
      ...(where.value.trim() ? { where: where.value.trim() } : {}),
    }, view.signal);
    location.hash = `#/jobs/${job.id}`;
  }));
  append(view.root, h('h1', {}, 'Generate personas'),
    h('h2', {}, 'From seed texts'),
    h('p', { class: 'muted' }, 'Each line is a seed text; the pipeline infers who would read, write, like or dislike it. Preview runs draft, enrich and validate in the API process; a job goes through Kafka to the store.'),
    seeds, h('div', { class: 'actions' }, previewButton, startButton),
    h('h2', {}, 'From sampled attributes'),
    h('p', { class: 'muted' }, 'As `personahub generate`: each persona is drawn from the profile\'s distributions, conditioned on the filter (the filter language of search).'),
    h('div', { class: 'search' },
      h('label', { class: 'field' }, h('span', {}, 'Count'), count),
      h('label', { class: 'field' }, h('span', {}, 'Profile'), profile),
      h('label', { class: 'field' }, h('span', {}, 'Where'), where),
      sampleButton),
    out);
}

function jobView(job: JobT, onCancel: () => void): HTMLElement {
  const progress = job.progress;
  const cancel = h('button', { type: 'button', 'data-testid': 'cancel-job' }, 'Cancel what is not sent yet');
  cancel.addEventListener('click', onCancel);
  return h('div', {},
    h('p', { class: 'lead' },
      'Status ', h('strong', { 'data-testid': 'job-status' }, job.status), ` · ${job.sent} of ${job.seeds} seeds sent · started ${formatTime(job.createdAt)}`,
      job.error ? h('span', { class: 'error' }, ` ${job.error}`) : null),
    job.status === 'sending' ? cancel : null,
    progress
      ? h('div', {},
        h('table', { 'data-testid': 'stages' },
          h('thead', {}, h('tr', {}, ...['Hop', 'In', 'Out', 'Pending', ''].map((c) => h('th', {}, c)))),
          h('tbody', {}, ...progress.stages.map((s) => h('tr', { 'data-testid': 'stage' },
            h('td', {}, s.hop), h('td', {}, s.in), h('td', {}, s.out), h('td', {}, s.pending),
            h('td', {}, h('progress', { max: Math.max(1, s.in), value: s.out })))))),
        h('div', { class: 'figures' },
          h('div', { class: 'figure' }, h('strong', { 'data-testid': 'job-indexed' }, progress.indexed), h('span', {}, 'indexed')),
          h('div', { class: 'figure' }, h('strong', { 'data-testid': 'job-rejected' }, progress.rejected), h('span', {}, 'rejected')),
          h('div', { class: 'figure' }, h('strong', {}, progress.deadLettered), h('span', {}, 'dead-lettered')),
        ),
        h('p', { 'data-testid': 'job-settled', 'data-settled': String(progress.settled) },
          progress.settled ? 'Settled: every seed sent and all that came of it is accounted for.' : 'Running…'))
      : h('p', { class: 'muted' }, 'No per-hop progress for this job (it is older than the API process\'s observer window).'),
  );
}

/** A job's page: its per-hop progress, asked for again every second until everything it sent is accounted for. */
export async function jobPage(view: View, id: string): Promise<void> {
  const holder = h('section', { 'data-testid': 'job', 'data-state': 'loading' });
  append(view.root, h('h1', {}, 'Generation job'), h('p', { class: 'muted' }, h('code', {}, id)), holder);
  const cancel = () => {
    api.cancelJob(id, view.signal).catch((error: unknown) => holder.append(errorBox(error)));
  };
  while (!view.signal.aborted) {
    try {
      const job = await api.job(id, view.signal);
      holder.replaceChildren(jobView(job, cancel));
      holder.dataset.state = 'ready';
      if (job.progress?.settled || !job.progress || job.status === 'failed') return;
    } catch (error) {
      if (view.signal.aborted) return;
      holder.replaceChildren(errorBox(error));
      holder.dataset.state = 'error';
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, POLL_MS);
      view.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
}
