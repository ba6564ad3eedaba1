import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../core/logger.ts';

export type CacheEntry = { kind: 'chat'; model: string; value: unknown } | { kind: 'embed'; model: string; vectors: number[][] };

const DiskRecord = z.object({
  v: z.literal(1),
  key: z.string(),
  entry: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('chat'), model: z.string(), value: z.unknown() }),
    z.object({ kind: z.literal('embed'), model: z.string(), vectors: z.array(z.array(z.number())) }),
  ]),
});

/** JSON with object keys sorted at every level, so equal requests hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const src = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(src).sort().map((k) => [k, src[k]]));
  });
}

export function cacheKey(request: unknown): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

/**
 * In-memory LRU in front of an optional disk store. Disk files are sharded by the key's first two
 * bytes (no directory grows past a few thousand files) and written tmp + rename, so a crash never
 * leaves a torn entry that a later process would trust. Cache failures are logged, never thrown:
 * the cache saves money, it must not fail a call.
 */
export class ResponseCache {
  private readonly memory = new Map<string, CacheEntry>();

  constructor(
    private readonly maxEntries: number,
    private readonly dir: string | undefined,
    private readonly log: Logger,
  ) {}

  async get(key: string): Promise<CacheEntry | undefined> {
    const hit = this.memory.get(key);
    if (hit) {
      this.remember(key, hit);
      return hit;
    }
    if (!this.dir) return undefined;
    let text: string;
    try {
      text = await readFile(this.path(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, key }, 'LLM cache read failed; calling the model');
      return undefined;
    }
    let parsed: z.infer<typeof DiskRecord> | undefined;
    try {
      const result = DiskRecord.safeParse(JSON.parse(text));
      if (result.success && result.data.key === key) parsed = result.data;
    } catch {
      // Unparseable JSON falls through to the warning below.
    }
    if (!parsed) {
      this.log.warn({ key }, 'LLM cache entry is corrupt; ignoring it');
      return undefined;
    }
    const entry = parsed.entry as CacheEntry;
    this.remember(key, entry);
    return entry;
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    this.remember(key, entry);
    if (!this.dir) return;
    const file = this.path(key);
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    try {
      await mkdir(join(this.dir, key.slice(0, 2), key.slice(2, 4)), { recursive: true });
      await writeFile(tmp, JSON.stringify({ v: 1, key, entry }));
      await rename(tmp, file);
    } catch (err) {
      this.log.warn({ err, key }, 'LLM cache write failed; the response is not persisted');
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  private path(key: string): string {
    return join(this.dir as string, key.slice(0, 2), key.slice(2, 4), `${key}.json`);
  }

  private remember(key: string, entry: CacheEntry): void {
    if (this.maxEntries <= 0) return;
    // Map iteration order is insertion order: delete + set moves the key to the young end.
    this.memory.delete(key);
    this.memory.set(key, entry);
    while (this.memory.size > this.maxEntries) {
      const oldest = this.memory.keys().next();
      if (oldest.done) break;
      this.memory.delete(oldest.value);
    }
  }
}
