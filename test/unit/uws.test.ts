// uWebSockets.js is loaded in one place, with the head limit it is given.
import t from 'tap';
import { loadUws, uws } from '../../src/http/uws.js';

t.test('uws() before loadUws() fails loudly', async (t) => {
  t.throws(() => uws(), /before loadUws/);
});

t.test('loadUws loads once, with one head limit', async (t) => {
  const loaded = loadUws(20_000);
  t.equal(typeof loaded.App, 'function');
  t.equal(process.env.UWS_HTTP_MAX_HEADERS_SIZE, '20000', 'uWS reads its head limit from here when it loads');
  t.equal(uws(), loaded);
  t.equal(loadUws(20_000), loaded, 'asking again for the same limit is fine');
  t.throws(() => loadUws(4096), /20000-byte head limit, not 4096/);
});
