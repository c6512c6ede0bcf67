/**
 * The POST bodies /track reads, by media type, and how each becomes Values:
 * a form (or text/plain, as sendBeacon sends a string), multipart form data,
 * and for a bulk flavor Matomo's JSON `{"requests": [...]}`.
 */
import type { Flavor } from '../flavor.js';
import { bulkEntries, bulkValues } from './bulk.js';
import { checked, oneLine } from './hit.js';
import type { MultipartReader } from './multipart.js';
import { formValues, queryMerged, type Refusal } from './post.js';
import type { HttpState } from './state.js';

const FORM = 'application/x-www-form-urlencoded';
export const MULTIPART = 'multipart/form-data';
const JSON_TYPE = 'application/json';

/** The body's media type, lower case, without its parameters; null when /track does not read it. */
export function bodyType(contentType: string, flavor: Flavor): string | null {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (type !== FORM && type !== 'text/plain' && type !== MULTIPART && !(type === JSON_TYPE && flavor.bulk)) return null;
  return type;
}

/**
 * The whole body (`bytes`) → the Lines to record, or the refusal, given to
 * `finish`; a multipart body gives them later, through `guarded`.
 */
export function parseBody(
  s: HttpState, bytes: Buffer, flavor: Flavor, type: string, query: string, multipart: MultipartReader | null,
  extra: string[] | undefined, finish: (result: Buffer[] | Refusal) => void, guarded: (read: () => void) => void,
): void {
  if (multipart !== null) {
    // Fed whole, once: busboy keeps each piece it is given as its own buffer.
    multipart.write(bytes);
    return multipart.end((post) => guarded(() => {
      finish(typeof post === 'string' ? { reason: post } : oneLine(flavor, queryMerged(query, post, s.settings.limits, extra)));
    }));
  }
  if (flavor.bulk) {
    const entries = bulkEntries(bytes);
    if (entries !== null) {
      return finish(bulkValues(entries, s.settings.limits, extra, (json) => checked(flavor, json)));
    }
  }
  if (type === JSON_TYPE) return finish({ reason: 'bad_content_type' });
  finish(oneLine(flavor, formValues(query, bytes, s.settings.limits, extra)));
}

