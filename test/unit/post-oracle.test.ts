// POST Values against Rack 2.2.22 (scripts/rack-http-post-oracle.rb): Rails'
// params, GET.merge(POST), for query-only, body-only and overlapping POSTs,
// raw bytes in bodies, and multipart bodies. Byte-identical JSON or the same
// rejection.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { formValues, queryMerged } from '../../src/http/post.js';
import { multipartReader } from '../../src/http/multipart.js';
import { rackLimits } from '../../src/query/index.js';

interface Entry { id: string; q: string; type: string; body?: string; body64?: string }
type Expected = { id: string; json: string } | { id: string; reject: string };

const corpus = JSON.parse(readFileSync(new URL('../rack/http-post-corpus.json', import.meta.url), 'utf8')).entries as Entry[];
const expected = new Map((JSON.parse(readFileSync(new URL('../rack/http-post-expected.json', import.meta.url), 'utf8')).expected as Expected[])
  .map((e) => [e.id, e]));
const limits = { ...rackLimits, maxBodyBytes: 1 << 20 };

async function scratchd(e: Entry): Promise<{ json: string } | { reject: string }> {
  const body = e.body64 !== undefined ? Buffer.from(e.body64, 'base64') : Buffer.from(e.body!);
  if (e.type.toLowerCase().startsWith('multipart/form-data')) {
    const reader = multipartReader(e.type, limits);
    if (typeof reader === 'string') return { reject: reader };
    // Fed in small pieces, as uWS hands a body over.
    for (let i = 0; i < body.length; i += 7) reader.write(body.subarray(i, i + 7));
    const post = await new Promise<Parameters<Parameters<typeof reader.end>[0]>[0]>((resolve) => reader.end(resolve));
    if (typeof post === 'string') return { reject: post };
    const r = queryMerged(e.q, post, limits, undefined);
    return typeof r === 'string' ? { reject: r } : { json: r.toString() };
  }
  const r = formValues(e.q, body, limits, undefined);
  return typeof r === 'string' ? { reject: r } : { json: r.toString() };
}

t.test('POST Values agree with Rack 2.2 Request#params', async (t) => {
  t.ok(corpus.length >= 40, `${corpus.length} entries`);
  for (const e of corpus) {
    const want = expected.get(e.id);
    if (want === undefined) throw new Error(`${e.id}: no expected result; run ruby scripts/rack-http-post-oracle.rb`);
    const { id: _, ...rest } = want;
    t.same(await scratchd(e), rest, e.id);
  }
});
