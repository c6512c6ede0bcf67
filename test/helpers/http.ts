// A plain HTTP/1.1 client with a Host header of the test's choosing.
import http from 'node:http';
import net from 'node:net';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function request(
  port: number,
  path: string,
  opts: { host?: string; method?: string; body?: string | Buffer; headers?: Record<string, string>; agent?: http.Agent; localAddress?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: opts.agent ?? false, localAddress: opts.localAddress,
      headers: { ...(opts.host === undefined ? {} : { host: opts.host }), ...opts.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Send raw bytes, resolve with everything the server sends back before it closes or `waitMs` passes. */
export function raw(port: number, data: string | Buffer, waitMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(port, '127.0.0.1', () => sock.write(data));
    const timer = setTimeout(() => sock.destroy(), waitMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}
