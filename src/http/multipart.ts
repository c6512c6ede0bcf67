/**
 * multipart/form-data bodies (what `navigator.sendBeacon(FormData)` sends),
 * read with busboy as the body streams in: text fields become params the way
 * Rack 2.2's multipart parser makes them (paramsFromFields); a file part
 * refuses the whole request (`file_part`): a beacon endpoint records no
 * uploads. The caller stops feeding at limits.maxBodyBytes, so nothing here
 * holds more than that.
 */
import busboy from 'busboy';
import type { RejectReason } from './reject.js';
import type { QueryLimits } from '../query/index.js';
import { paramsFromFields, type Params } from '../query/index.js';

export interface MultipartReader {
  /** Feed the next piece of the body (copied: busboy may keep it). */
  write(chunk: Uint8Array): void;
  /** The body is complete: `done` gets the fields' params or the reason to refuse. */
  end(done: (result: Params | RejectReason) => void): void;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A reader for a body of this Content-Type, or the reason it cannot be read (no boundary, ...). */
export function multipartReader(contentType: string, limits: QueryLimits & { maxBodyBytes: number }): MultipartReader | RejectReason {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      // Names and values as raw bytes (latin1 keeps each byte), decoded as
      // UTF-8 below so invalid bytes are refused, not turned into U+FFFD.
      defCharset: 'latin1',
      defParamCharset: 'latin1',
      limits: { fieldNameSize: limits.maxBodyBytes, fieldSize: limits.maxBodyBytes, fields: limits.maxParams, parts: limits.maxParams + 1 },
    });
  } catch {
    return 'bad_multipart';
  }
  const fields: [string, string][] = [];
  let refused: RejectReason | null = null;
  const refuse = (reason: RejectReason) => {
    refused ??= reason;
  };
  parser.on('field', (name, value) => {
    try {
      fields.push([utf8.decode(Buffer.from(name, 'latin1')), utf8.decode(Buffer.from(value, 'latin1'))]);
    } catch {
      refuse('invalid_utf8');
    }
  });
  parser.on('file', (_name, stream, info) => {
    stream.resume();
    // An empty file input (filename="") is skipped, as Rack skips it.
    if (info.filename !== '') refuse('file_part');
  });
  parser.on('fieldsLimit', () => refuse('too_many_params'));
  parser.on('partsLimit', () => refuse('too_many_params'));
  let done: ((result: Params | RejectReason) => void) | null = null;
  let failed = false;
  parser.on('error', () => {
    failed = true;
    done?.('bad_multipart');
    done = null;
  });
  parser.on('close', () => {
    if (done === null) return;
    const d = done;
    done = null;
    if (refused !== null) return d(refused);
    const params = paramsFromFields(fields, limits);
    d('reason' in params ? params.reason : params);
  });
  return {
    write(chunk) {
      if (!failed) parser.write(Buffer.from(chunk));
    },
    end(cb) {
      if (failed) return cb('bad_multipart');
      done = cb;
      parser.end();
    },
  };
}
