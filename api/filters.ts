import { FILTER_ATTRIBUTES, parseWhere } from '../persona/filter.ts';
import type { PersonaFilter } from '../store/query.ts';

/** The filters a listing or search takes, as they arrive in a query string or body. */
export type FilterInput = Omit<PersonaFilter, 'where'> & { where?: string };

/**
 * Parses `where` with the filter language (a FilterError, answered as a 400, says which clause is wrong)
 * and gives each clause its attribute's kind, which the store needs to compare it.
 */
export function toStoreFilter(input: FilterInput): PersonaFilter {
  const where = parseWhere(input.where ?? '').map((c) => ({ ...c, kind: FILTER_ATTRIBUTES[c.attribute] }));
  const { cluster, mode, model, depth, createdAfter, createdBefore } = input;
  return { where, cluster, mode, model, depth, createdAfter, createdBefore };
}

/** A canonical form of the filters, so a cursor can be tied to the listing it came from. */
export function filterKey(input: FilterInput): string {
  const { where, cluster, mode, model, depth, createdAfter, createdBefore } = input;
  return JSON.stringify([where ?? '', cluster ?? null, mode ?? null, model ?? null, depth ?? null, createdAfter ?? null, createdBefore ?? null]);
}
