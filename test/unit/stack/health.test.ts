import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { kafkaAnswers, listeningInodes, portFree, portOwner, tcpAccepts, httpOk } from '../../../stack/health.ts';

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  // close() waits for open connections, and a silent server never reads the client's FIN.
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(onData?: (data: Buffer, reply: (b: Buffer) => void) => void): Promise<number> {
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    if (onData) socket.on('data', (d: Buffer) => onData(d, (b) => socket.write(b)));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

async function closedPort(): Promise<number> {
  const port = await listen();
  await new Promise((r) => servers.pop()?.close(r));
  return port;
}

describe('health checks', () => {
  it('tells a listening port from a closed one', async () => {
    const open = await listen();
    const closed = await closedPort();
    expect(await tcpAccepts(open)).toBe(true);
    expect(await tcpAccepts(closed)).toBe(false);
    expect(await portFree(open)).toBe(false);
    expect(await portFree(closed)).toBe(true);
  });

  it('names the process that holds a port', async () => {
    const port = await listen();
    expect(await portOwner(port)).toMatchObject({ pid: process.pid });
  });

  it('recognises a Kafka answer by its correlation id', async () => {
    const port = await listen((req, reply) => {
      const correlation = req.readInt32BE(8);
      const res = Buffer.alloc(10);
      res.writeInt32BE(6, 0);
      res.writeInt32BE(correlation, 4);
      res.writeInt16BE(0, 8);
      reply(res);
    });
    expect(await kafkaAnswers(port)).toBe(true);
  });

  // A silent server never answers, so only the check's own timeout can end these calls: resolving
  // at all (false) is the behaviour under test. The test timeout only stops a hung check; how fast
  // the check gives up is not asserted (that depends on the machine).
  it('does not take a silent or foreign server for Kafka, and does not hang', async () => {
    const silent = await listen();
    expect(await kafkaAnswers(silent, 300)).toBe(false);
    const http = await listen((_req, reply) => reply(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
    expect(await kafkaAnswers(http, 300)).toBe(false);
  }, 60_000);

  it('gives up on an HTTP server that never answers', async () => {
    const silent = await listen();
    expect(await httpOk(`http://127.0.0.1:${silent}/`, 300)).toBe(false);
  }, 60_000);

  it('parses listening sockets out of /proc/net/tcp', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:4A94 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:4A94 0100007F:D6D8 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 20 4 30 10 -1',
      '   2: 0100007F:3C8C 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 333 1 0000000000000000 100 0 0 10 0',
    ].join('\n');
    expect(listeningInodes(text, 19092)).toEqual(['111']);
    expect(listeningInodes(text, 15500)).toEqual(['333']);
    expect(listeningInodes(text, 1)).toEqual([]);
  });
});
