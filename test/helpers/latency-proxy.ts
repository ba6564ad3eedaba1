import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy that delays every byte the server sends by `latencyMs`, in order: each request through it
 * takes at least that long. Fault tests put it between stage processes and PostgreSQL so that a stage
 * holds each chunk for a known minimum time (every chunk claims its inputs in the store), whatever the
 * machine's speed: the moment a test waits for then lasts long enough to be seen.
 */
export interface LatencyProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  through(url: string): string;
  close(): Promise<void>;
}

export async function startLatencyProxy(target: { host: string; port: number }, latencyMs: number): Promise<LatencyProxy> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    track(client);
    track(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    client.on('close', () => upstream.destroy());
    // The server's bytes wait in one queue, delivered strictly in arrival order by one timer. A timer
    // per chunk fired out of order (two chunks a millisecond apart got timeouts of 100 and 99 ms in
    // the same tick), and a PostgreSQL answer reordered left its client waiting for the rest forever.
    const queue: { due: number; deliver: () => void }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      timer = undefined;
      while (queue.length > 0 && (queue[0]?.due ?? 0) <= Date.now()) queue.shift()?.deliver();
      const head = queue[0];
      if (head) timer = setTimeout(pump, Math.max(1, head.due - Date.now()));
    };
    const later = (deliver: () => void) => {
      queue.push({ due: Date.now() + latencyMs, deliver });
      timer ??= setTimeout(pump, latencyMs);
    };
    upstream.on('data', (chunk) => later(() => client.write(chunk)));
    upstream.on('close', () => later(() => client.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    through(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
