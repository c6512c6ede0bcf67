// uWebSockets.js alone, no scratchd: a valid request and an invalid one in
// the same read. The valid request's handler runs and answers, yet the client
// receives only uWS's own error. Run: node scripts/uws-pipelined-error.mjs
//
// Why (uWebSockets src/HttpContext.h, the on_data handler): uWS corks the
// socket, runs the parser; the handler's answer goes into the loop's cork
// buffer; when the parser then fails (returnedSocket == FULLPTR) uWS calls
// us_socket_write() with its error response directly, bypassing the cork
// buffer, then us_socket_shutdown() and us_socket_close(). The cork buffer
// is never flushed to the closed socket, and onAborted is not called (the
// response counts as done). A fix belongs there: uncork (flush) before
// writing the error.
import net from 'node:net';
import uWS from 'uWebSockets.js';

let handled = 0;
const app = uWS.App().get('/*', (res) => {
  handled++;
  res.end('ok');
});
app.listen('127.0.0.1', 0, (ls) => {
  const port = uWS.us_socket_local_port(ls);
  const sock = net.connect(port, '127.0.0.1', () => {
    sock.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n');
  });
  let got = '';
  sock.on('data', (d) => { got += d; });
  sock.on('close', () => {
    // Prints: handled 1, received ["505"] — the handler's 200 never arrives.
    console.log('handled', handled, 'received', JSON.stringify([...got.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1])));
    process.exit(0);
  });
});
