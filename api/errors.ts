import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { FilterError } from '../persona/filter.ts';
import { ProfileError } from '../persona/profile.ts';
import { UnsatisfiableFilterError } from '../persona/sampler.ts';
import type { ErrorBodyT } from './schemas.ts';

/** A request the API refuses, with the HTTP status it answers and a stable code. */
export class ApiError extends PersonaHubError {
  constructor(readonly statusCode: number, code: `PH_API_${string}`, message: string) {
    super(code, message);
  }
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

export function errorBody(statusCode: number, code: string, message: string): ErrorBodyT {
  return { statusCode, code, error: REASONS[statusCode] ?? (statusCode < 500 ? 'Bad Request' : 'Internal Server Error'), message };
}

/**
 * Every failure as the one JSON error shape. Bad input of any kind (schema validation, an unparsable or
 * oversize body, a bad filter or cursor, an unknown id) is a 4xx that says what was wrong; a dependency
 * that does not answer is a 503; only a fault of the API itself is a 500, logged with its stack.
 */
export function errorHandler(logger: Logger) {
  return (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void => {
    const send = (status: number, code: string, message: string): void => {
      void reply.status(status).send(errorBody(status, code, message));
    };
    if ('validation' in error && error.validation) {
      // ajv's message for an unknown field does not name it; its params do.
      const problems = error.validation.map((v) => {
        const extra = typeof v.params.additionalProperty === 'string' ? `: "${v.params.additionalProperty}"` : '';
        return `${error.validationContext ?? 'request'}${v.instancePath} ${v.message ?? 'is invalid'}${extra}`;
      });
      send(400, 'PH_API_VALIDATION', problems.join('; '));
    } else if (error instanceof ApiError) {
      send(error.statusCode, error.code, error.message);
    } else if (error instanceof FilterError || error instanceof ProfileError || error instanceof UnsatisfiableFilterError) {
      send(400, error.code, error.message);
    } else if (error instanceof PersonaHubError && error.transient) {
      logger.warn({ err: error, url: request.url }, 'dependency unavailable');
      send(503, error.code, `${error.dependency ?? 'a dependency'} is unavailable; try again later`);
    } else if ('statusCode' in error && typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      // fastify's own refusals: a body over the limit (413), an unparsable body (400), a content type it has no parser for (415).
      send(error.statusCode, 'code' in error && typeof error.code === 'string' ? error.code : 'PH_API_BAD_REQUEST', error.message);
    } else {
      logger.error({ err: error, url: request.url, method: request.method }, 'request failed');
      send(500, error instanceof PersonaHubError ? error.code : 'PH_API_INTERNAL', 'internal error; the server log has the details');
    }
  };
}
