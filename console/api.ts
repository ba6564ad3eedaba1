import type { Static } from 'typebox';
import type {
  Clusters, Fidelity, Hits, Job, ListPage, Neighbours, PersonaRecord, Preview, SampleJobBody, SearchBody, Stats, ValidationSeries,
} from '../api/schemas.ts';

export type Filters = Pick<Static<typeof SearchBody>, 'where' | 'mode' | 'depth' | 'cluster'>;
export type PersonaRecordT = Static<typeof PersonaRecord>;
export type NeighboursT = Static<typeof Neighbours>;
export type StatsT = Static<typeof Stats>;
export type ClustersT = Static<typeof Clusters>;
export type FidelityT = Static<typeof Fidelity>;
export type ValidationSeriesT = Static<typeof ValidationSeries>;
export type JobT = Static<typeof Job>;
export type PreviewT = Static<typeof Preview>;
export type HitsT = Static<typeof Hits>;
export type SampleT = Static<typeof SampleJobBody>['sample'];
export type ListPageT = Static<typeof ListPage>;

/** A refusal from the API, with its stable code (PH_FILTER_ATTRIBUTE, PH_API_KEY_UNKNOWN...). */
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/**
 * The key lives in sessionStorage: it survives a reload but not the tab, so a key typed on a shared
 * machine does not stay behind, and it is sent only to this origin.
 */
const KEY = 'personahub.apiKey';
export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (key: string): void => sessionStorage.setItem(KEY, key),
};

async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, signal: AbortSignal | undefined, body?: object): Promise<T> {
  const key = apiKey.get();
  if (!key) throw new ApiFailure(401, 'PH_CONSOLE_NO_KEY', 'enter an API key above (create one with `personahub api-key create --scope write`)');
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (body) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, signal: signal ?? null, body: body ? JSON.stringify(body) : null });
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
    throw new ApiFailure(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? res.statusText);
  }
  return (await res.json()) as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const api = {
  search: (text: string, filters: Filters, limit: number, signal?: AbortSignal) => call<HitsT>('POST', '/search', signal, { text, limit, ...filters }),
  list: (filters: Filters, limit: number, cursor: string | undefined, signal?: AbortSignal) => call<ListPageT>('GET', `/personas${query({ ...filters, limit, cursor })}`, signal),
  persona: (id: string, signal?: AbortSignal) => call<PersonaRecordT>('GET', `/personas/${encodeURIComponent(id)}`, signal),
  similar: (id: string, limit: number, signal?: AbortSignal) => call<HitsT>('GET', `/personas/${encodeURIComponent(id)}/similar${query({ limit })}`, signal),
  neighbours: (id: string, depth: number, signal?: AbortSignal) => call<NeighboursT>('GET', `/personas/${encodeURIComponent(id)}/neighbours${query({ depth })}`, signal),
  stats: (signal?: AbortSignal) => call<StatsT>('GET', '/stats', signal),
  clusters: (members: number, signal?: AbortSignal) => call<ClustersT>('GET', `/clusters${query({ members })}`, signal),
  fidelity: (signal?: AbortSignal) => call<FidelityT>('GET', '/stats/fidelity', signal),
  validation: (signal?: AbortSignal) => call<ValidationSeriesT>('GET', '/stats/validation', signal),
  preview: (seeds: string[], signal?: AbortSignal) => call<PreviewT>('POST', '/preview', signal, { seeds }),
  submitJob: (seeds: string[], signal?: AbortSignal) => call<JobT>('POST', '/jobs', signal, { seeds }),
  submitSampleJob: (sample: SampleT, signal?: AbortSignal) => call<JobT>('POST', '/jobs', signal, { sample }),
  job: (id: string, signal?: AbortSignal) => call<JobT>('GET', `/jobs/${encodeURIComponent(id)}`, signal),
  cancelJob: (id: string, signal?: AbortSignal) => call<JobT>('DELETE', `/jobs/${encodeURIComponent(id)}`, signal),
};
