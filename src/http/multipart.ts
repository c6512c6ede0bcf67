/**
 * multipart/form-data bodies (what `navigator.sendBeacon(FormData)` sends),
 * read as Rack 2.2.22's multipart parser (Rack::Multipart::Parser) reads
 * them: its text parts become params (paramsFromFields); a file part refuses
 * the whole request (`file_part`): a beacon endpoint records no uploads.
 *
 * Hand-written, a port of Rack's parser, rather than busboy: Rack's quirks
 * are the contract (Rails recorded what Rack made of a body), and a correct
 * parser drops or normalises exactly those. A part without a name is named
 * after its Content-Type (`text/plain[]`) or its Content-ID; a part without
 * Content-Disposition is kept; a text/plain part's charset tags its name and
 * value; headers are found by Rack's regular expressions. Checked against
 * Rack itself (scripts/rack-http-post-oracle.rb). It is not the GET hot path.
 *
 * The body is gathered (the caller stops feeding at limits.maxBodyBytes) and
 * parsed at its end, as Rack reads it: in one piece (its read size, 1 MiB, is
 * the largest maxBodyBytes).
 */
import type { RejectReason } from './reject.js';
import { paramsFromFields, parseParams, type Params, type QueryLimits } from '../query/index.js';

export interface MultipartReader {
  /** Feed the next piece of the body (copied: the caller may reuse its memory). */
  write(chunk: Uint8Array): void;
  /** The body is complete: `done` gets the params or the reason to refuse. */
  end(done: (result: Params | RejectReason) => void): void;
}

/** A reader for a body of this Content-Type. */
export function multipartReader(contentType: string, limits: QueryLimits & { maxBodyBytes: number }): MultipartReader | RejectReason {
  // One growing buffer, not a list of pieces: a body sent in tiny chunks costs its bytes, not a Buffer per chunk.
  let body = Buffer.allocUnsafe(0);
  let size = 0;
  return {
    write(chunk) {
      if (size + chunk.length > body.length) {
        const bigger = Buffer.allocUnsafe(Math.max(size + chunk.length, body.length * 2, 1024));
        body.copy(bigger, 0, 0, size);
        body = bigger;
      }
      body.set(chunk, size);
      size += chunk.length;
    },
    end(done) {
      done(multipartParams(contentType, body.subarray(0, size), limits));
    },
  };
}

/** Rack::Multipart::MULTIPART: the boundary parameter of the Content-Type. */
const MULTIPART = /^multipart\/[^\n]*?boundary([ \t\n\v\f\r]*)="?([^";,]+)"?/i;

/** Rack::Request#POST for a multipart body: its params, or why Rack (or scratchd) refuses it. */
export function multipartParams(contentType: string, body: Buffer, limits: QueryLimits): Params | RejectReason {
  const m = MULTIPART.exec(contentType);
  // No body or no boundary: Rack's multipart parser gives up and the body is read as a form.
  if (body.length === 0 || m === null) return orReason(parseParams(body, limits));
  // Rack raises EOFError on these: the request is refused.
  if (m[1] !== '' || /boundary[ \t\n\v\f\r]*=/i.test(contentType.slice(m.index + m[0].length))) return 'bad_multipart';
  const parts = parse(body.toString('latin1'), m[2]!);
  if (typeof parts === 'string') return parts;
  const fields: [string, string][] = [];
  let file = false;
  for (const part of parts) {
    if (part.filename === '') continue; // an empty file input: Rack skips it
    if (part.filename !== null) {
      file = true;
      fields.push([decode(part.name, 'utf8'), '']); // stands for the upload's hash, so type conflicts and depth count as in Rack
      continue;
    }
    const charset = textCharset(part.contentType);
    if (charset === 'bad' || (charset === 'ascii' && !ASCII.test(part.name))) {
      // Rack raises here, after the parts before it went into the params (and may have raised first).
      const before = paramsFromFields(fields, limits);
      return 'reason' in before ? before.reason : 'bad_multipart';
    }
    fields.push([decode(part.name, charset), decode(part.body, charset)]);
  }
  const params = paramsFromFields(fields, limits);
  if ('reason' in params) return params.reason;
  return file ? 'file_part' : params;
}

function orReason(p: Params | { readonly reason: RejectReason }): Params | RejectReason {
  return 'reason' in p ? p.reason : p;
}

interface Part {
  name: string;
  /** null: a text part; '' an empty file input; else an upload. */
  filename: string | null;
  contentType: string | null;
  body: string;
}

/** Rack::Utils.multipart_total_part_limit and multipart_file_limit. */
const PART_LIMIT = 4096;
const FILE_LIMIT = 128;

/**
 * Rack::Multipart::Parser's states over the whole body (a latin1 string: one
 * character per byte, as Ruby's binary string): the parts in order, or the
 * reason. Where Rack raises (EOFError: no boundary, an unterminated part), or
 * would wait for more input that never comes, the answer is `bad_multipart`.
 */
function parse(s: string, boundary: string): Part[] | RejectReason {
  const full = `--${boundary}`;
  const last = `${full}--`;
  const parts: Part[] = [];
  let files = 0;
  let pos = 0;

  /** Parser#consume_boundary: lines until one is a boundary; null at the end of the body. */
  const consumeBoundary = (): 'boundary' | 'end' | null => {
    for (;;) {
      const nl = s.indexOf('\n', pos);
      const line = s.slice(pos, nl < 0 ? s.length : nl + 1);
      pos += line.length;
      const token = rubyStrip(line);
      if (token === full) return 'boundary';
      if (token === last) return 'end';
      if (pos >= s.length) return null;
    }
  };

  // FAST_FORWARD
  const first = consumeBoundary();
  if (first === null) return 'bad_multipart';
  if (first === 'end' && pos === boundary.length + 6 && pos === s.length) return parts;
  for (;;) {
    // MIME_HEAD
    const headEnd = s.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) return 'bad_multipart';
    const head = s.slice(pos, headEnd + 2);
    pos = headEnd + 4;
    const contentType = CONTENT_TYPE.exec(head)?.[1] ?? null;
    const disposition = CONTENT_DISPOSITION.exec(head);
    let name: string | null = disposition === null ? (CONTENT_ID.exec(head)?.[1] ?? null) : dequote(disposition[1]!);
    const filename = filenameOf(head);
    if (filename === undefined) return 'bad_multipart';
    if (name === null || name === '') name = filename ?? `${contentType ?? 'text/plain'}[]`;
    // Collector#check_part_limits
    if (filename !== null) files++;
    if (files >= FILE_LIMIT) return 'bad_multipart';
    if (parts.length + 1 >= PART_LIMIT) return 'too_many_params';
    // MIME_BODY: up to the next boundary, with the CRLF before it when there is one
    let at = s.indexOf(full, pos);
    while (at >= 0 && !(s.startsWith('\r\n', at + full.length) || s.startsWith('--', at + full.length))) at = s.indexOf(full, at + 1);
    if (at < 0) return 'bad_multipart';
    const bodyEnd = at - 2 >= pos && s.startsWith('\r\n', at - 2) ? at - 2 : at;
    parts.push({ name, filename, contentType, body: s.slice(pos, bodyEnd) });
    // Rack skips two bytes for the CRLF, whether or not it was there.
    pos = bodyEnd + 2;
    // CONSUME_TOKEN
    const token = consumeBoundary();
    if (token === 'end' || (pos >= s.length && token !== 'boundary')) return parts;
  }
}

/** Ruby's String#strip: whitespace and NUL at both ends. */
function rubyStrip(s: string): string {
  return s.replace(/^[\0\t\n\v\f\r ]+|[\0\t\n\v\f\r ]+$/g, '');
}

// Rack::Multipart's regular expressions. Ruby's \s is [ \t\n\v\f\r], its `.`
// is [^\n], its ^ and $ are line anchors: spelled so here (JS would differ on
// \r and on Latin-1 spaces).
const S = '[ \\t\\n\\v\\f\\r]';
const TOKEN = '[^ \\t\\n\\v\\f\\r()<>,;:\\\\"/\\[\\]?=]+';
const VALUE = `"(?:\\\\"|[^"])*"|${TOKEN}`;
const CONDISP = `Content-Disposition:${S}*${TOKEN}${S}*`;
const ATTRIBUTE_CHAR = '[^ \\x00-\\x1f\\x7f)(><@,;:\\\\"/\\[\\]?=\'*%]';
const ATTRIBUTE = `${ATTRIBUTE_CHAR}+`;
const REGULAR_PARAMETER = `(${ATTRIBUTE}(?:\\*[0-9]+)?)=(${VALUE})`;
const EXTENDED_OTHER_VALUE = `%[0-9a-fA-F]{2}|${ATTRIBUTE_CHAR}`;
const EXTENDED_OTHER_PARAMETER = `(${ATTRIBUTE}\\*[1-9][0-9]*\\*)=((?:${EXTENDED_OTHER_VALUE})*)`;
const EXTENDED_INITIAL_PARAMETER = `(${ATTRIBUTE}(?:\\*0)?\\*)=([a-zA-Z0-9\\-]*'[a-zA-Z0-9\\-]*'(?:${EXTENDED_OTHER_VALUE})*)`;
const DISPPARM = `;${S}*(?:${REGULAR_PARAMETER}|${EXTENDED_INITIAL_PARAMETER}|${EXTENDED_OTHER_PARAMETER})${S}*`;
const BOL = '(?<=^|\\n)';
const EOL = '(?=\\n|$)';
const CONTENT_TYPE = /Content-Type: ([^\n]*)\r\n/i;
const CONTENT_DISPOSITION = new RegExp(`Content-Disposition:[^:]*;${S}*name=(${VALUE})`, 'i');
const CONTENT_ID = /Content-ID:[ \t\n\v\f\r]*([^\r\n]*)/i;
const RFC2183 = new RegExp(`${BOL}${CONDISP}(?:${DISPPARM})+${EOL}`, 'i');
const DISPPARMS = new RegExp(DISPPARM, 'gi');
const BROKEN = new RegExp(`${BOL}${CONDISP}[^\\n]*;${S}*filename=(${VALUE})`, 'i');

/** Rack::Auth::Digest::Params.dequote */
function dequote(s: string): string {
  const q = /^"([^\n]*)"\n?$/.exec(s);
  return (q === null ? s : q[1]!).replace(/\\([^\n])/g, '$1');
}

/**
 * Parser#get_filename, as far as it decides a part's fate: null (a text part),
 * '' (an empty file input, skipped), another string (an upload), or
 * undefined where Rack raises (an RFC 2231 filename* without a charset).
 */
function filenameOf(head: string): string | null | undefined {
  let filename: string | undefined;
  if (RFC2183.test(head)) {
    const params = new Map<string, string>();
    for (const m of head.matchAll(DISPPARMS)) {
      const [k, v] = m.slice(1).filter((g) => g !== undefined) as [string, string];
      params.set(k, v);
    }
    filename = params.get('filename');
    if (filename !== undefined) {
      const q = new RegExp(`${BOL}"([^\\n]*)"${EOL}`).exec(filename);
      if (q !== null) filename = q[1]!;
    } else if (params.has('filename*')) {
      const [encoding, , rest] = splitRuby(params.get('filename*')!, "'", 3);
      if (encoding === '') return undefined; // Encoding.find('') raises
      filename = rest;
    }
  } else {
    const broken = BROKEN.exec(head);
    if (broken !== null) filename = /^"([^\n]*)"$/m.exec(broken[1]!)?.[1] ?? broken[1]!;
  }
  return filename ?? null;
}

/** Ruby's String#split(sep, limit) for a one-character separator. */
function splitRuby(s: string, sep: string, limit: number): (string | undefined)[] {
  const out = s.split(sep);
  return [...out.slice(0, limit - 1), out.length >= limit ? out.slice(limit - 1).join(sep) : undefined];
}

type Charset = 'utf8' | 'ascii' | 'latin1' | 'bad';

/**
 * Parser#tag_multipart_encoding: a `text/plain` part's charset is its name's
 * and value's encoding; any other part is UTF-8. Rack refuses UTF-16 and
 * UTF-32 parts (its key regexp cannot match them) and unknown names; it would
 * convert a few more single-byte and CJK charsets, which scratchd refuses
 * too (`bad_multipart`; browsers send UTF-8).
 */
function textCharset(contentType: string | null): Charset {
  if (contentType === null) return 'utf8';
  const list = contentType.split(';');
  while (list.length > 0 && list[list.length - 1] === '') list.pop(); // Ruby's split drops trailing empties
  if (list.length === 0) return 'bad'; // nil.strip! raises
  if (rubyStrip(list[0]!) !== 'text/plain') return 'utf8';
  let charset: Charset = 'utf8';
  for (const param of list.slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0) return 'bad'; // `k, v = param.split('=', 2)`: v is nil, v.strip! raises
    const k = rubyStrip(param.slice(0, eq));
    let v = rubyStrip(param.slice(eq + 1));
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    if (k === 'charset') charset = CHARSETS.get(v.toLowerCase()) ?? 'bad';
  }
  return charset;
}

/**
 * Ruby encodings Rack's parse and JSON.generate take as these bytes decode:
 * US-ASCII writes its bytes as UTF-8, but a name in it must be ASCII (Ruby's
 * regexp raises on any other byte).
 */
const CHARSETS = new Map<string, Charset>([
  ['utf-8', 'utf8'], ['cp65001', 'utf8'], ['us-ascii', 'ascii'], ['ascii', 'ascii'], ['ansi_x3.4-1968', 'ascii'], ['646', 'ascii'],
  ['iso-8859-1', 'latin1'], ['iso8859-1', 'latin1'],
]);

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/**
 * A name's or value's bytes (a latin1 string) as text. Bytes that are not
 * UTF-8 become a lone surrogate, which the converter takes for invalid UTF-8
 * (refused if it survives into the Values, as in Rack).
 */
function decode(bytes: string, charset: Charset): string {
  if (charset === 'latin1' || ASCII.test(bytes)) return bytes;
  try {
    return utf8.decode(Buffer.from(bytes, 'latin1'));
  } catch {
    return '\ud800';
  }
}
