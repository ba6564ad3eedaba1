import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController } from 'fastify';
import type { Logger } from '../core/logger.ts';
import type { Embedder } from '../llm/embedder.ts';
import type { ApiMetrics } from '../runtime/api-metrics.ts';
import type { Persona } from '../schemas/types.generated.ts';
import type { Store } from '../store/index.ts';
import type { CorpusStore } from '../store/query.ts';
import { authorize, hashApiKey, presentedKey } from './auth.ts';
import { consoleRoutes } from './console.ts';
import { Cursors } from './cursor.ts';
import { ApiError, errorBody, errorHandler } from './errors.ts';
import type { Jobs, PipelineProgress } from './jobs.ts';
import type { PreviewResult } from './preview.ts';
import { routes } from './routes.ts';

export interface ApiHealth {
  ok: boolean;
  reasons: string[];
}

export interface ApiDeps {
  corpus: CorpusStore;
  /** Whole personas (to modify one) and the lattice's edges (store/lattice.ts). */
  store: Pick<Store, 'readPersona' | 'neighbours'>;
  /** Sends personas to the draft topic, where enrich picks them up: a modification re-enters the pipeline there. */
  resubmit(personas: readonly Persona[]): Promise<void>;
  /** Sends a tombstone for the persona to the validated topic: the index stage deletes it and passes the tombstone on. */
  remove(id: string): Promise<void>;
  embedder: Embedder;
  jobs: Jobs;
  /** The pipeline observer jobs read their progress from; /stats/validation reads its outcomes. None without Kafka. */
  progress: PipelineProgress | undefined;
  /** The sampler profile /stats/fidelity compares with when the request names none (PERSONAHUB_PROFILE). */
  defaultProfile: string;
  preview(texts: readonly string[]): Promise<PreviewResult>;
  metrics: ApiMetrics;
  logger: Logger;
  /** Whether the API can serve: the store answers. A Kafka outage does not stop reads; a job sending meanwhile fails with its error recorded. */
  ready(): Promise<ApiHealth>;
  limits: {
    /** Largest request body in bytes; a larger one is a 413 before it is read whole. */
    bodyLimit: number;
    /** Requests per minute per API key (per client address without one). */
    rateLimitPerMinute: number;
  };
}


/** The OpenAPI document's security schemes: either header carries the same key. */
const SECURITY: Record<string, string[]>[] = [{ bearer: [] }, { apiKey: [] }];

/**
 * The HTTP API, built but not listening: tests drive it through inject(), `personahub serve` calls
 * listen(). Plugins first (rate limit, OpenAPI), then one error shape for every failure, then routes.
 */
function createFastify(deps: ApiDeps) {
  return Fastify({
    loggerInstance: deps.logger,
    // One line per request would drown the pipeline's logs; /metrics counts requests by route and status.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.limits.bodyLimit,
    // Refuse unknown fields rather than drop them (a misspelt filter must not silently match everything);
    // coerce query strings into the declared numbers (which also reads a JSON scalar as the declared scalar,
    // 42 as "42"; objects and arrays of several items are still refused); fill declared defaults.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
}

export type App = ReturnType<typeof createFastify>;

export async function buildApp(deps: ApiDeps): Promise<App> {
  const app = createFastify(deps);

  // JSONL uploads of seed texts; the route splits the lines.
  app.addContentTypeParser('application/x-ndjson', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  await app.register(rateLimit, {
    global: true,
    max: deps.limits.rateLimitPerMinute,
    timeWindow: 60_000,
    // Per key, so clients behind one address do not share a budget; the hash, so no key sits in memory as given.
    keyGenerator: (request) => {
      const key = presentedKey(request);
      return key ? `key:${hashApiKey(key)}` : `ip:${request.ip}`;
    },
    errorResponseBuilder: (_request, context) => new ApiError(429, 'PH_API_RATE_LIMITED', `rate limit of ${context.max} requests per minute exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`),
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'PersonaHub Stream API', version: '1.0.0', description: 'Read, search and generate personas. See docs/API.md.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API key from `personahub api-key create`.' },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
        },
      },
    },
    // Routes that ask for a key say so in the document.
    transform: ({ schema, url, route }) => {
      const access = route.config?.access ?? 'read';
      return { schema: access === 'public' ? schema : { ...schema, security: SECURITY }, url };
    },
  });
  // The reference page is as public as the document it renders; onRoute hooks stay inside this plugin.
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs' });
  });

  app.setErrorHandler(errorHandler(deps.logger));
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(errorBody(404, 'PH_API_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });

  // Before the body is read: a request without a good key costs no parsing.
  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    await authorize(deps.corpus, request, request.routeOptions.config.access ?? 'read');
  });
  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, seconds: reply.elapsedTime / 1000 });
  });

  const cursors = new Cursors(await deps.corpus.cursorSecret());
  await app.register(routes(deps, cursors));
  // The web console (console/): a page and its bundle, which call the routes above with the key its user gives.
  await app.register(consoleRoutes);
  return app;
}
