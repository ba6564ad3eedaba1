import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ApiKeyRecord, CorpusStore } from '../store/query.ts';
import { ApiError } from './errors.ts';

export type Scope = 'read' | 'write';

/** What a route asks of the caller: nothing (probes, metrics, the API's own document), a read key, or a write key. */
export type Access = 'public' | Scope;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    apiKey?: ApiKeyRecord;
  }
}

const PREFIX = 'phk_';

/**
 * Keys are 32 random bytes, so a single sha-256 is enough to store them: a slow hash (scrypt) protects
 * guessable passwords, and nothing about a 256-bit random key is guessable. Only the hash is kept.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Makes a key, stores its hash, and returns the key itself: the only time anyone sees it. */
export async function createApiKey(corpus: Pick<CorpusStore, 'insertApiKey'>, scope: Scope, label = ''): Promise<{ id: string; key: string; scope: Scope }> {
  const id = randomUUID();
  const key = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  await corpus.insertApiKey({ id, keyHash: hashApiKey(key), scope, label });
  return { id, key, scope };
}

/** The key a request carries: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}

/** Checks the request's key against what the route asks; a write key may also read. */
export async function authorize(corpus: Pick<CorpusStore, 'findApiKey'>, request: FastifyRequest, access: Access): Promise<void> {
  if (access === 'public') return;
  const key = presentedKey(request);
  if (!key) throw new ApiError(401, 'PH_API_UNAUTHENTICATED', 'an API key is required: send "Authorization: Bearer <key>" (create one with `personahub api-key create`)');
  const record = await corpus.findApiKey(hashApiKey(key));
  if (!record) throw new ApiError(401, 'PH_API_KEY_UNKNOWN', 'the API key is not known');
  if (access === 'write' && record.scope !== 'write') throw new ApiError(403, 'PH_API_FORBIDDEN', `this route needs a write key; the key given has scope "${record.scope}"`);
  request.apiKey = record;
}
