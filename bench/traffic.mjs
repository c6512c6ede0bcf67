// The traffic every contender gets: Matomo-style beacons over three flavors'
// hosts, and the Values each query must become (for the correctness checks).

export const FLAVORS = [
  { name: 'gr', host: 'www.example.gr', timeZone: 'Europe/Athens', lang: 'el-GR',
    title: 'Παπούτσια & τσάντες', path: '/papoutsia', search: 'παπούτσια' },
  { name: 'tr', host: 'www.example.com.tr', timeZone: 'Europe/Istanbul', lang: 'tr-TR',
    title: 'Ayakkabı & Çanta – İndirim', path: '/ayakkabi', search: 'deri ayakkabı' },
  { name: 'uk', host: 'www.example.co.uk', timeZone: 'Europe/London', lang: 'en-GB',
    title: 'Shoes & bags — £20 off', path: '/shoes', search: 'leather shoes' },
];
const PER_FLAVOR = 16;

/** encodeURIComponent as browsers' trackers use it; spaces as %20 in some fields, + in others. */
const enc = (s) => encodeURIComponent(s);
const encPlus = (s) => encodeURIComponent(s).replace(/%20/g, '+');

/** Matomo/GA-style beacon queries, ~300 bytes each, rotating over the flavors' hosts. */
export function makeRequests() {
  const out = [];
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let i = 0; i < PER_FLAVOR; i++) {
    for (const f of FLAVORS) {
      const id = rnd().toString(16).padStart(8, '0') + rnd().toString(16).padStart(8, '0');
      const url = `https://${f.host}${f.path}?utm_source=news&p=${i}`;
      const ref = `https://www.google.com/?q=${encPlus(f.search)}`;
      const q = [
        'idsite=' + (1 + FLAVORS.indexOf(f)), 'rec=1', `r=${rnd() % 1000000}`, `h=${i % 24}`, `m=${(i * 7) % 60}`, `s=${(i * 13) % 60}`,
        'url=' + enc(url), 'urlref=' + enc(ref), 'action_name=' + encPlus(f.title),
        `_id=${id.slice(0, 16)}`, `res=1920x1080`, `pv_id=${rnd().toString(36).slice(0, 6)}`,
        `lang=${f.lang}`,
      ].join('&');
      out.push({ host: f.host, flavor: f.name, path: `/track?${q}` });
    }
  }
  return out;
}

/** What a flat query must become: Rack semantics for flat keys (+ is space, last wins). */
export function expectedValues(query) {
  const o = {};
  for (const p of query.split(/[&;] */)) {
    if (p === '') continue;
    const i = p.indexOf('=');
    const dec = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
    o[dec(i < 0 ? p : p.slice(0, i))] = i < 0 ? null : dec(p.slice(i + 1));
  }
  return o;
}
