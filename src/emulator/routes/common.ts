/** Helpers for route handlers: body shape checks with JSON:API pointers. */
import { ApiError, invalid } from '../http.js';
import { isPlainObject } from '../validate.js';

/**
 * `body.data` as an object of `type`, or a 400 with the right pointer. `members` lists what the operation's
 * resource object may hold besides `type` and `attributes` (`id`, `meta`, `relationships`); others → 400.
 */
export function requireData(body: unknown, type: string, members: readonly string[] = []): Record<string, unknown> {
  if (!isPlainObject(body) || body.data === undefined) throw new ApiError(400, invalid("'data' is a required field.", '/data'));
  const data = body.data;
  if (!isPlainObject(data)) throw new ApiError(400, invalid("'data' must be an object.", '/data'));
  if (data.type !== type) throw new ApiError(400, invalid(`'type' must be '${type}'.`, '/data/type'));
  for (const k in data) {
    if (k !== 'type' && k !== 'attributes' && !members.includes(k)) {
      throw new ApiError(400, invalid(`'${k}' is not a valid member of a '${type}' resource object here.`, `/data/${k}`));
    }
  }
  return data;
}

export function notFound(what: string, id: string): ApiError {
  // observed wording for lists: "List UHbQG does not exist."
  const detail = what === 'list' ? `List ${id} does not exist.` : `A ${what} with id ${id} does not exist.`;
  return new ApiError(404, { code: 'not_found', detail });
}
