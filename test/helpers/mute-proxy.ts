/**
 * A TCP proxy in front of a broker that can swallow the broker's answers:
 * while muted, requests still reach the broker (it writes the messages) and
 * nothing comes back, so the producer never gets its delivery reports. The
 * fault of a broker whose acknowledgements are lost (a network cut after
 * the write, a broker killed before it answers), made deterministic.
 * Unmuting closes the muted connections (their byte streams are cut short)
 * and new ones pass everything.
 */
import net from 'node:net';

export interface MuteProxy {
  readonly port: number;
  /** Answers of the broker swallowed so far (chunks read while muted): each proves a request reached it. */
  readonly swallowed: number;
  mute(): void;
  unmute(): void;
  /** Like mute, and the requests do not reach the broker either: nothing is written. */
  blackHole(): void;
  /** The broker unreachable: every connection closed, new ones refused at once (until unmute). */
  cut(): void;
  close(): Promise<void>;
}

export async function startMuteProxy(target: number): Promise<MuteProxy> {
  let muted = false;
  let cut = false;
  let holed = false;
  let swallowed = 0;
  const open = new Set<{ client: net.Socket; broker: net.Socket; muted: boolean; holed: boolean }>();
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const broker = net.connect(target, '127.0.0.1');
    const pair = { client, broker, muted, holed };
    open.add(pair);
    client.on('data', (b) => { if (!pair.holed) broker.write(b); });
    broker.on('data', (b) => {
      if (pair.muted) swallowed++;
      else client.write(b);
    });
    const end = (): void => { client.destroy(); broker.destroy(); open.delete(pair); };
    for (const s of [client, broker]) { s.on('error', end); s.on('close', end); }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get swallowed() { return swallowed; },
    mute() {
      muted = true;
      for (const p of open) p.muted = true;
    },
    unmute() {
      muted = false;
      cut = false;
      holed = false;
      for (const p of [...open]) if (p.muted) { p.client.destroy(); p.broker.destroy(); open.delete(p); }
    },
    blackHole() {
      muted = holed = true;
      for (const p of open) p.muted = p.holed = true;
    },
    cut() {
      cut = true;
      for (const p of [...open]) { p.client.destroy(); p.broker.destroy(); open.delete(p); }
    },
    close: () => new Promise<void>((resolve) => {
      for (const p of open) { p.client.destroy(); p.broker.destroy(); }
      server.close(() => resolve());
    }),
  };
}
