import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import type { PersonaRecord as StoredPersona } from '../store/query.ts';
import type { ApiDeps } from './app.ts';
import type { Cursors } from './cursor.ts';
import { ApiError } from './errors.ts';
import { filterKey, toStoreFilter } from './filters.ts';
import {
  Clusters, ClustersQuery, Neighbours, NeighboursQuery, Deleting, PatchBody, SampleJobBody, Submitted, ErrorBody, Health, Hits, IdParams, Job, JobBody, JobParams, ListPage, ListQuery, PersonaRecord, Preview, PreviewBody,
  SearchBody, SimilarQuery, Stats, Fidelity, FidelityQuery, ValidationQuery, ValidationSeries,
} from './schemas.ts';
import { fidelityStats, validationSeries } from './stats.ts';

const Errors = { '4xx': ErrorBody };

/** The stored row as the API shows it: provenance, lineage and the validation record each in one place. */
function personaView(p: StoredPersona) {
  const { validation, ...attributes } = p.attributes;
  const { lineage, promptVersion, ...generation } = p.lineage;
  const lattice = typeof lineage === 'object' && lineage !== null ? lineage : { depth: 0, rootSeedId: p.seedId, parentPersonaId: null, relationKind: null };
  return {
    ...p,
    attributes,
    provenance: { mode: p.mode, model: p.model, promptVersion: typeof promptVersion === 'string' ? promptVersion : null, createdAt: p.createdAt },
    lineage: { ...generation, ...lattice },
    validation: typeof validation === 'object' && validation !== null ? (validation as Record<string, unknown>) : null,
  };
}

const notFound = (id: string): ApiError => new ApiError(404, 'PH_API_PERSONA_NOT_FOUND', `no persona ${id}`);

/** Every route, each with the schemas that validate it and document it. */
export function routes(deps: ApiDeps, cursors: Cursors): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/health', { config: { access: 'public', rateLimit: false }, schema: { summary: 'Liveness: the process answers.', response: { 200: Health } } },
      async () => ({ status: 'ok', reasons: [] }));

    app.get('/ready', { config: { access: 'public', rateLimit: false }, schema: { summary: 'Readiness: the store answers.', response: { 200: Health, 503: Health } } },
      async (_request, reply) => {
        const h = await deps.ready();
        return reply.status(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'failing', reasons: h.reasons });
      });

    app.get('/metrics', { config: { access: 'public', rateLimit: false }, schema: { summary: 'Prometheus metrics of the API process.', produces: ['text/plain'], response: { 200: Type.String() } } },
      async (_request, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()));

    app.get('/openapi.json', { config: { access: 'public', rateLimit: false }, schema: { hide: true } }, async () => app.swagger());

    app.get('/personas/:id', { config: { access: 'read' }, schema: { summary: 'One persona: attributes, modalities, provenance, lineage, validation record.', params: IdParams, response: { 200: PersonaRecord, ...Errors } } },
      async (request) => {
        const p = await deps.corpus.persona(request.params.id);
        if (!p) throw notFound(request.params.id);
        const relations = (await deps.store.neighbours(p.id, 1)).map(({ from, to, kind, depth, createdAt }) => ({ from, to, kind, depth, createdAt }));
        return { ...personaView(p), versions: await deps.corpus.versions(p.id), relations };
      });

    app.patch('/personas/:id', {
      config: { access: 'write' },
      schema: {
        summary: 'Modify a persona: the change becomes the next version, which goes through enrich, validate and index again (through Kafka); the version it replaces stays in the history.',
        params: IdParams, body: PatchBody, response: { 202: Submitted, ...Errors },
      },
    }, async (request, reply) => {
      const { id } = request.params;
      const base = await deps.store.readPersona(id);
      if (!base) throw notFound(id);
      const version = await deps.corpus.submitEdit(id, base.version, request.body);
      if (version === undefined) throw new ApiError(409, 'PH_API_EDIT_CONFLICT', `another modification of persona ${id} was submitted at the same moment; send yours again`);
      // Enrichment and validation are computed again from the modified persona (modalities, embedding, checks).
      await deps.resubmit([{ ...base, ...request.body, version, enrichment: null, validation: null }]);
      return reply.status(202).send({ id, version, status: 'submitted' as const });
    });

    app.delete('/personas/:id', {
      config: { access: 'write' },
      schema: { summary: 'Delete a persona: a tombstone through the pipeline, so it leaves search and listings and the services downstream see it go.', params: IdParams, response: { 202: Deleting, ...Errors } },
    }, async (request, reply) => {
      const { id } = request.params;
      if (!(await deps.corpus.vector(id))) throw notFound(id);
      await deps.remove(id);
      return reply.status(202).send({ id, status: 'deleting' as const });
    });

    app.get('/personas', { config: { access: 'read' }, schema: { summary: 'Personas in id order, filtered, one page at a time.', querystring: ListQuery, response: { 200: ListPage, ...Errors } } },
      async (request) => {
        const { limit, cursor, ...filters } = request.query;
        const key = filterKey(filters);
        const after = cursor === undefined ? undefined : cursors.decode(cursor, key);
        const page = await deps.corpus.list(toStoreFilter(filters), { after, limit });
        const last = page.items.at(-1);
        return { items: page.items, nextCursor: page.more && last ? cursors.encode(last.id, key) : null };
      });

    app.post('/search', { config: { access: 'read' }, schema: { summary: 'Semantic search by text, the filters applied inside the vector scan.', body: SearchBody, response: { 200: Hits, ...Errors } } },
      async (request) => {
        const { text, limit, ...filters } = request.body;
        const filter = toStoreFilter(filters);
        const [vector] = await deps.embedder.embed([text]);
        if (!vector) throw new ApiError(503, 'PH_API_EMBEDDER', `embedder ${deps.embedder.model} returned no vector`);
        return { items: await deps.corpus.search(vector, filter, limit) };
      });

    app.get('/personas/:id/similar', { config: { access: 'read' }, schema: { summary: 'The personas closest to this one by meaning.', params: IdParams, querystring: SimilarQuery, response: { 200: Hits, ...Errors } } },
      async (request) => {
        const { limit, ...filters } = request.query;
        const filter = toStoreFilter(filters);
        const vector = await deps.corpus.vector(request.params.id);
        if (!vector) throw notFound(request.params.id);
        return { items: await deps.corpus.search(vector, filter, limit, request.params.id) };
      });

    app.get('/personas/:id/neighbours', { config: { access: 'read' }, schema: { summary: 'The persona\'s lattice neighbourhood: relation edges within `depth` hops, both directions.', params: IdParams, querystring: NeighboursQuery, response: { 200: Neighbours, ...Errors } } },
      async (request) => {
        const { id } = request.params;
        const edges = await deps.store.neighbours(id, request.query.depth);
        const personas = await deps.corpus.summaries([id, ...edges.flatMap((e) => [e.from, e.to])]);
        if (!personas.some((p) => p.id === id)) throw notFound(id);
        return { id, depth: request.query.depth, edges, personas };
      });

    app.get('/clusters', { config: { access: 'read' }, schema: { summary: 'Clusters recorded by `personahub clusters`, with labels and members.', querystring: ClustersQuery, response: { 200: Clusters, ...Errors } } },
      async (request) => ({ clusters: await deps.corpus.clusters(request.query.members) }));

    app.get('/stats', { config: { access: 'read' }, schema: { summary: 'Population statistics over the whole corpus.', response: { 200: Stats, ...Errors } } },
      async () => deps.corpus.stats());

    app.get('/stats/fidelity', {
      config: { access: 'read' },
      schema: {
        summary: 'The stored personas drawn from a sampler profile against its target: each attribute\'s observed and target shares, divergences, and every pair of attributes with the flagged ones (as `personahub report`).',
        querystring: FidelityQuery, response: { 200: Fidelity, ...Errors },
      },
    }, async (request) => fidelityStats(deps.corpus, { ...request.query, profile: request.query.profile ?? deps.defaultProfile }));

    app.get('/stats/validation', {
      config: { access: 'read' },
      schema: { summary: 'Validation outcomes over time: passed as written, repaired, rejected by reason, per time bucket.', querystring: ValidationQuery, response: { 200: ValidationSeries, ...Errors } },
    }, async (request) => {
      if (!deps.progress) throw new ApiError(503, 'PH_API_NO_OBSERVER', 'this API process observes no pipeline topics, so it has no validation outcomes to count');
      return validationSeries(deps.progress, request.query.bucket);
    });

    app.post('/jobs', {
      config: { access: 'write' },
      schema: {
        summary: 'Start a generation job: seed texts as a JSON array, a JSONL upload (application/x-ndjson, one {"text": ...} per line), or a sampled-attributes job ({"sample": {"count", "profile", "where"}}).',
        body: { content: { 'application/json': { schema: Type.Union([JobBody, SampleJobBody]) }, 'application/x-ndjson': { schema: Type.String({ minLength: 1 }) } } },
        response: { 202: Job, ...Errors },
      },
    }, async (request, reply) => {
      // Validated against the schema of its content type already; the checks narrow the type.
      const body: unknown = request.body;
      let job;
      if (typeof body === 'string') job = await deps.jobs.submit({ lines: body.replace(/\r?\n$/, '').split('\n'), format: 'jsonl', source: 'api' });
      else if (Value.Check(JobBody, body)) job = await deps.jobs.submit({ lines: body.seeds, format: 'text', source: body.source ?? 'api' });
      else if (Value.Check(SampleJobBody, body)) job = await deps.jobs.submitSample(body.sample);
      else throw new ApiError(415, 'PH_API_MEDIA_TYPE', 'send application/json ({"seeds": [...]}) or application/x-ndjson');
      return reply.status(202).send({ ...job, seeds: job.seedIds.length });
    });

    app.get('/jobs/:id', { config: { access: 'read' }, schema: { summary: 'A job and its progress at every hop of the pipeline.', params: JobParams, response: { 200: Job, ...Errors } } },
      async (request) => {
        const job = await deps.jobs.get(request.params.id);
        return { ...job, seeds: job.seedIds.length };
      });

    app.delete('/jobs/:id', { config: { access: 'write' }, schema: { summary: 'Cancel a job: what is not sent yet is not sent, and the job is marked cancelled.', params: JobParams, response: { 200: Job, ...Errors } } },
      async (request) => {
        const job = await deps.jobs.cancel(request.params.id);
        return { ...job, seeds: job.seedIds.length };
      });

    app.post('/preview', { config: { access: 'write' }, schema: { summary: 'Draft, enrich and validate a few seeds in process: nothing sent to Kafka, nothing stored.', body: PreviewBody, response: { 200: Preview, ...Errors } } },
      async (request) => deps.preview(request.body.seeds));
  };
}
