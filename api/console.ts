import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { PersonaHubError } from '../core/errors.ts';

/** The console's sources (console/): a page, its script and stylesheet, bundled here. */
const SOURCES = join(import.meta.dirname, '..', 'console');

/** Where the console lives; the API's own routes keep every other path. */
export const CONSOLE_PATH = '/console/';

/**
 * The one inline style allowed: cytoscape puts this one-line stylesheet into the page's head when it draws its
 * first graph. Allowed by its hash, so no other inline style (or one from another cytoscape) gets in; the browser
 * test fails on any style the policy blocks.
 */
const CYTOSCAPE_STYLE = '.__________cytoscape_container { position: relative; }';

/**
 * The console may load its own script and stylesheet and call its own origin, nothing else: no CDN, no inline
 * script, so a persona's text rendered into the page can never run. Chart.js and cytoscape draw on canvases.
 */
const CSP = [
  "default-src 'none'", "script-src 'self'", `style-src 'self' 'sha256-${createHash('sha256').update(CYTOSCAPE_STYLE).digest('base64')}'`,
  "connect-src 'self'", "img-src 'self' data:", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  gzipped: Buffer;
  type: string;
  etag: string;
}

export class ConsoleBuildError extends PersonaHubError {
  constructor(message: string, cause: unknown) {
    super('PH_API_CONSOLE_BUILD', message, { cause });
  }
}

function asset(body: Buffer, type: string): Asset {
  return { body, gzipped: gzipSync(body), type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * Bundles console/main.ts (with chart.js, cytoscape and the stylesheet it imports) in memory with esbuild:
 * no build step to forget and no stale bundle in the tree. It runs once per process, on the first request for
 * the console, so an API whose console nobody opens never pays for it.
 */
export async function buildConsole(): Promise<Map<string, Asset>> {
  try {
    const result = await build({
      // The sources in a checkout; in the container artefact, the same modules compiled by tsc beside dist/api.
      entryPoints: { app: join(SOURCES, existsSync(join(SOURCES, 'main.ts')) ? 'main.ts' : 'main.js') },
      bundle: true,
      minify: true,
      format: 'esm',
      target: 'es2022',
      platform: 'browser',
      outdir: '/console',
      write: false,
      legalComments: 'none',
      logLevel: 'silent',
    });
    const assets = new Map<string, Asset>();
    for (const file of result.outputFiles) {
      const name = file.path.slice(file.path.lastIndexOf('/') + 1);
      assets.set(name, asset(Buffer.from(file.contents), name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8'));
    }
    assets.set('index.html', asset(await readFile(join(SOURCES, 'index.html')), 'text/html; charset=utf-8'));
    return assets;
  } catch (error) {
    throw new ConsoleBuildError(`building the web console from ${SOURCES} failed: ${(error as Error).message}`, error);
  }
}

function send(request: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply {
  void reply.header('content-type', a.type).header('etag', a.etag).header('cache-control', 'no-cache').header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff').header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === a.etag) return reply.status(304).send();
  const accepts = request.headers['accept-encoding'];
  if (typeof accepts === 'string' && /\bgzip\b/.test(accepts)) return reply.header('content-encoding', 'gzip').send(a.gzipped);
  return reply.send(a.body);
}

/**
 * The web console: a static page and its bundle, public like the API's own reference page (they hold no
 * data; every call the console makes carries the key its user typed in). Left out of the OpenAPI document.
 */
export const consoleRoutes: FastifyPluginAsync = async (app) => {
  let assets: Promise<Map<string, Asset>> | undefined;
  const load = (): Promise<Map<string, Asset>> => {
    // A failed build is tried again on the next request instead of being remembered.
    assets ??= buildConsole().catch((error: unknown) => {
      assets = undefined;
      throw error;
    });
    return assets;
  };
  const config = { access: 'public' as const, rateLimit: false as const };

  app.get('/', { config, schema: { hide: true } }, async (_request, reply) => reply.redirect(CONSOLE_PATH));
  app.get('/console', { config, schema: { hide: true } }, async (_request, reply) => reply.redirect(CONSOLE_PATH));
  const serve = async (request: FastifyRequest, reply: FastifyReply, file: string): Promise<FastifyReply> => {
    const found = (await load()).get(file);
    if (!found) {
      reply.callNotFound();
      return reply;
    }
    return send(request, reply, found);
  };
  app.get(CONSOLE_PATH, { config, schema: { hide: true } }, async (request, reply) => serve(request, reply, 'index.html'));
  app.get<{ Params: { file: string } }>(`${CONSOLE_PATH}:file`, { config, schema: { hide: true } }, async (request, reply) => serve(request, reply, request.params.file));
};
