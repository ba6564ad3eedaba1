import { createHmac, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.ts';

/**
 * Page cursors: the last id of a page and a digest of the filters it was made under, signed with the
 * store's cursor secret. A cursor is opaque to clients; one that was altered, truncated, or made under
 * other filters is refused with a 400 instead of silently paging through another listing.
 */
export class Cursors {
  constructor(private readonly secret: string) {}

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  encode(after: string, filters: string): string {
    const payload = Buffer.from(JSON.stringify({ a: after, f: this.digest(filters) })).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  /** The id the next page starts after, or a 400 naming what is wrong with the cursor. */
  decode(cursor: string, filters: string): string {
    const [payload, signature, ...rest] = cursor.split('.');
    if (!payload || !signature || rest.length > 0) throw bad('it is not a cursor this API issued');
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw bad('its signature does not match (altered or truncated)');
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw bad('it is not a cursor this API issued');
    }
    const { a, f } = parsed as { a?: unknown; f?: unknown };
    if (typeof a !== 'string' || typeof f !== 'string') throw bad('it is not a cursor this API issued');
    if (f !== this.digest(filters)) throw bad('it was issued for other filters; start again without a cursor');
    return a;
  }

  private digest(filters: string): string {
    return createHmac('sha256', this.secret).update(`filters:${filters}`).digest('base64url').slice(0, 22);
  }
}

const bad = (why: string): ApiError => new ApiError(400, 'PH_API_CURSOR', `bad cursor: ${why}`);
