// Chunked bodies over real sockets, as properties (issue 30 hostile 2, issue
// 34 item 4): every random chunking of a valid body, written in random reads,
// is accepted and recorded; every chunk-extension form is refused with a 400
// and a close, never left hanging and never recorded, except the forms uWS
// frames right (whitespace before `;`), whose extension is ignored as RFC
// 9112 §7.1.1 asks. fast-check prints the seed of a failing run.
import net from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { dayOf } from '../../src/day.js';
import { startDaemon } from '../helpers/daemon.js';
import { dayLines } from '../helpers/files.js';
import { sleep } from '../helpers/wait.js';
import { stats } from '../helpers/watch.js';

const d = await startDaemon();
t.teardown(() => d.stop());

interface Result { text: string; closed: boolean; ms: number }

/** Write each piece as its own read (Nagle off, a pause between), then collect the answer. */
function exchange(writes: Buffer[], waitMs: number, gapMs = 5): Promise<Result> {
  return new Promise((resolve) => {
    const started = Date.now();
    let text = '';
    let closed = true;
    const sock = net.connect(d.port, '127.0.0.1', async () => {
      sock.setNoDelay(true);
      for (const w of writes) {
        if (sock.destroyed) return;
        sock.write(w);
        await sleep(gapMs);
      }
    });
    const timer = setTimeout(() => {
      closed = false;
      sock.destroy();
    }, waitMs);
    sock.on('data', (c) => {
      text += c.toString('latin1');
      // A 204 keeps the connection open: done once it is whole.
      if (/^HTTP\/1\.1 204 [^]*\r\n\r\n$/.test(text)) {
        closed = false;
        sock.destroy();
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed, ms: Date.now() - started });
    });
  });
}

let n = 0;
const recorded: string[] = [];
const refused: string[] = [];

/** A body a tracker sends, carrying `id`: a form, or multipart (which ends with CRLF, the case uWS hands over alone). */
const bodyOf = (id: string, kind: 'form' | 'multipart', value: string): { type: string; body: string } => kind === 'form'
  ? { type: 'application/x-www-form-urlencoded', body: `id=${id}&v=${value}` }
  : {
    type: 'multipart/form-data; boundary=XyZ',
    body: `--XyZ\r\nContent-Disposition: form-data; name="id"\r\n\r\n${id}\r\n--XyZ\r\nContent-Disposition: form-data; name="v"\r\n\r\n${value}\r\n--XyZ--\r\n`,
  };

const head = (type: string) => `POST /track HTTP/1.1\r\nHost: gr.test\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n`;

/**
 * `body` cut at `cuts` into chunks, chunk i's size line followed by extension
 * `exts[i % exts.length]`, the last chunk's by `lastExt`; `used`: the
 * extensions that made it onto the wire.
 */
function chunked(body: string, cuts: number[], exts: string[], lastExt: string): { wire: string; used: string[] } {
  const at = [...new Set(cuts.map((c) => c % body.length).filter((c) => c > 0))].sort((a, b) => a - b);
  const ends = [...at, body.length];
  const pieces = ends.map((end, i) => body.slice(i === 0 ? 0 : ends[i - 1], end));
  const extOf = (i: number) => (exts.length === 0 ? '' : exts[i % exts.length]!);
  const wire = pieces.map((p, i) => `${p.length.toString(16)}${extOf(i)}\r\n${p}\r\n`).join('') + `0${lastExt}\r\n\r\n`;
  return { wire, used: [...pieces.map((_, i) => extOf(i)), lastExt].filter((e) => e !== '') };
}

/** The wire bytes cut into reads at `splits`; `crlfAlone` also cuts around the body's final CRLF. */
function reads(wire: string, splits: number[], crlfAlone: boolean): Buffer[] {
  const at = new Set(splits.map((s) => s % wire.length).filter((s) => s > 0));
  if (crlfAlone) {
    const end = wire.lastIndexOf('\r\n0');
    // The data's own last CRLF ends two bytes before the chunk's CRLF.
    if (wire.slice(end - 2, end) === '\r\n') {
      at.add(end - 2);
      at.add(end);
    }
  }
  const points = [0, ...[...at].sort((a, b) => a - b), wire.length];
  return points.slice(1).map((p, i) => Buffer.from(wire.slice(points[i], p), 'latin1')).filter((b) => b.length > 0);
}

const value = fc.stringMatching(/^[a-z0-9]{0,40}$/);
const kind = fc.constantFrom<'form' | 'multipart'>('form', 'multipart');

t.test('every random chunking of a valid body, in random reads, is accepted', async (t) => {
  await fc.assert(fc.asyncProperty(kind, value, fc.array(fc.nat(), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 10 }), fc.boolean(),
    async (k, v, cuts, splits, crlfAlone) => {
      const id = `ok${n++}`;
      const { type, body } = bodyOf(id, k, v);
      const head0 = head(type);
      const { wire } = chunked(body, cuts, [], '');
      const r = await exchange([Buffer.from(head0), ...reads(wire, splits, crlfAlone)], 5000);
      if (!/^HTTP\/1\.1 204 /.test(r.text)) throw new Error(`not accepted: ${JSON.stringify(r.text.slice(0, 200))} for ${JSON.stringify(wire)}`);
      recorded.push(id);
    }), { numRuns: 60 });
  t.pass('every generated case held (fast-check throws, with its seed, on the first that does not)');
});

/** RFC 9112 §7.1.1 chunk-ext: *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ). */
const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,8}$/);
const bws = fc.constantFrom('', '', '', ' ', '\t');
const ext = fc.tuple(bws, bws, token, fc.option(fc.tuple(bws, bws, fc.oneof(token, token.map((s) => `"${s}"`))), { nil: undefined }))
  .map(([b1, b2, name, v]) => `${b1};${b2}${name}${v === undefined ? '' : `${v[0]}=${v[1]}${v[2]}`}`);

t.test('every chunk-extension form is refused with a 400 and a close, or (after whitespace) ignored', async (t) => {
  const before = await stats(d);
  let scratchdAnswered = 0;
  // Runs in batches, side by side: a misframed body is only seen after chunked.ts's QUIET_MS.
  await fc.assert(fc.asyncProperty(fc.array(fc.record({
    kind, v: value, cuts: fc.array(fc.nat(), { maxLength: 4 }), splits: fc.array(fc.nat(), { maxLength: 4 }),
    // A client that sends extensions puts them on every data chunk, or on the last chunk, or both.
    exts: fc.oneof(fc.constant<string[]>([]), fc.array(ext, { minLength: 1, maxLength: 4 })), lastExt: fc.option(ext, { nil: '' }),
  }), { minLength: 1, maxLength: 10 }), async (cases) => {
    await Promise.all(cases.map(async (c) => {
      const id = `ext${n++}`;
      const { type, body } = bodyOf(id, c.kind, c.v);
      const { wire, used } = chunked(body, c.cuts, c.exts, c.lastExt);
      if (used.length === 0) return;
      const r = await exchange([Buffer.from(head(type)), ...reads(wire, c.splits, false)], 5000);
      // uWS's digit check stops at whitespace: `5 ;a=b` is framed right and
      // the extension ignored, unless a read ends inside it (uWS then resumes
      // reading digits: its own 400, or a misframe).
      if (used.every((e) => e[0] === ' ' || e[0] === '\t') && /^HTTP\/1\.1 204 /.test(r.text)) {
        recorded.push(id);
        return;
      }
      // uWS's own 400 may be lost to a reset when it closes while the client
      // still writes. Where uWS found its way back to a size line and then
      // read the stream's end as a new request, its 505 is what the client
      // gets (scratchd's answer is lost inside uWS, docs/faults.md): refused either
      // way, and the end of this file checks nothing of it was recorded.
      if (!(r.text === '' || /^HTTP\/1\.1 (400|505) /.test(r.text)) || !r.closed) throw new Error(`not refused and closed: ${JSON.stringify(r.text.slice(0, 100))} closed=${r.closed} for ${JSON.stringify(wire)}`);
      if (r.text.endsWith('\r\n\r\nchunk_extension\n')) scratchdAnswered++;
      refused.push(id);
    }));
  }), { numRuns: 12, endOnFailure: true });
  const after = await stats(d);
  // Counted when decided: an answer uWS then lost (its own 505 or 400 won the race) is counted too.
  const counted = after.rejected.chunk_extension! - before.rejected.chunk_extension!;
  t.ok(counted >= scratchdAnswered && counted <= refused.length, `every chunk_extension answer counted (${scratchdAnswered} answered, ${counted} counted)`);
  t.ok(scratchdAnswered > 0, 'scratchd answered some itself (the rest uWS refused as size digits)');
});

t.test('the accepted bodies are recorded, the refused ones not', async (t) => {
  t.equal(await d.stop(), 0);
  const lines = dayLines(join(d.dir, 'log'), 'gr', dayOf(Date.now(), 'Europe/Athens'));
  const ids = new Set(lines.map((l) => (JSON.parse(l) as { id: string }).id));
  t.same(recorded.filter((id) => !ids.has(id)), [], 'every accepted body recorded');
  t.same(refused.filter((id) => ids.has(id)), [], 'no refused body recorded');
  t.equal(lines.length, ids.size, 'each once');
});
