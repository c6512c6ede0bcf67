// The ceiling: a bare uWebSockets.js app that answers /track with the same
// GIF and headers as scratchd and does nothing else (no parsing, no Line, no
// backend). Whatever scratchd costs above this is scratchd's own work.
//   node bench/ceiling.mjs PORT
import uWS from 'uWebSockets.js';

const GIF = Buffer.from('47494638396101000100800100000000ffffff21f90401000001002c00000000010001000002024c01003b', 'hex');
const NO_CACHE = 'no-store, no-cache, must-revalidate, max-age=0';
const port = Number(process.argv[2] ?? 8081);

uWS.App()
  .get('/track', (res) => {
    res.writeStatus('200 OK')
      .writeHeader('Content-Type', 'image/gif')
      .writeHeader('Cache-Control', NO_CACHE)
      .writeHeader('Expires', '0')
      .end(GIF);
  })
  .any('/*', (res) => res.writeStatus('404 Not Found').end('Not Found\n'))
  .listen('127.0.0.1', port, (ok) => {
    if (!ok) {
      process.stderr.write(`ceiling: cannot listen on ${port}\n`);
      process.exit(1);
    }
    process.stdout.write(`listening ${port}\n`);
  });
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
