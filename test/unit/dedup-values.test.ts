// Values fields read from a Line without parsing it (src/dedup/values.ts):
// for any Values object written as the converter writes it (compact JSON),
// the span found is exactly the field's JSON text, or absent, with names
// and values full of quotes, backslashes, colons, commas and braces, names
// that end another name, and the name itself inside values.
import fc from 'fast-check';
import t from 'tap';
import { findFlat, findNested, nested, Needle, type Span } from '../../src/dedup/values.js';

const names = ['r', 'pv_id', '_r', 'a"r', 'r\\', '{r', ',"r":', 'é', 'pv_id":"x'];
const text = fc.oneof(fc.constantFrom(...names, '"r":"1"', ',"pv_id":', '\\', '\\"', '{', '[', ''), fc.string(), fc.string({ unit: 'grapheme' }));
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    text, fc.constant(null),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...names), fc.string()), tie('v'), { maxKeys: 3 })),
})).v;
const values = fc.dictionary(fc.oneof(fc.constantFrom(...names), fc.string()), value, { maxKeys: 8 });

function find(json: Buffer, name: string): string | undefined {
  const span: Span = { start: -1, end: -1 };
  if (nested(json)) findNested(json, Buffer.from(JSON.stringify(name)), span);
  else findFlat(json, new Needle(name), span);
  return span.start < 0 ? undefined : json.subarray(span.start, span.end).toString();
}

t.test('the span is the field\'s own JSON text, or absent', async (t) => {
  fc.assert(fc.property(values, fc.constantFrom(...names), (v, name) => {
    const json = Buffer.from(JSON.stringify(v));
    const want = Object.hasOwn(v, name) ? JSON.stringify(v[name]) : undefined;
    return find(json, name) === want;
  }), { numRuns: 20_000 });
  t.pass('20,000 Values objects');
});

t.test('flat Lines read by the needle, nested ones member by member', async (t) => {
  const flat = Buffer.from('{"a":"x,\\"r\\":\\"9\\"","_r":"1","r":"482913","pv_id":null}');
  t.equal(nested(flat), false);
  t.equal(find(flat, 'r'), '"482913"', 'not inside a value, not the end of another name');
  t.equal(find(flat, 'pv_id'), 'null');
  t.equal(find(flat, 'x'), undefined);
  const deep = Buffer.from('{"e":{"r":"inner"},"l":["r",{"r":"x"}],"r":"outer"}');
  t.equal(nested(deep), true);
  t.equal(find(deep, 'r'), '"outer"', 'the top-level member, not a nested one');
  t.equal(find(deep, 'e'), '{"r":"inner"}');
  t.equal(find(Buffer.from('{}'), 'r'), undefined);
});
