// scratchd's /stats, read by the benchmarks over a raw socket (no client
// library in the measured process's way).
import { connect } from 'node:net';

/** The /stats object of the scratchd whose stats server listens on `statsPort`. */
export function readStats(statsPort) {
  return new Promise((resolve, reject) => {
    const s = connect(statsPort, '127.0.0.1');
    let buf = '';
    s.setTimeout(5000, () => s.destroy(new Error('/stats: no answer in 5 s')));
    s.on('connect', () => s.write('GET /stats HTTP/1.1\r\nHost: stats\r\nConnection: close\r\n\r\n'));
    s.on('data', (d) => { buf += d; });
    s.on('error', reject);
    s.on('close', () => {
      try {
        resolve(JSON.parse(buf.slice(buf.indexOf('\r\n\r\n') + 4)));
      } catch (err) {
        reject(new Error(`/stats: ${err.message}: ${buf.slice(0, 200)}`));
      }
    });
  });
}
