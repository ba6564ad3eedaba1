import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLatencyProxy, type LatencyProxy } from '../../helpers/latency-proxy.ts';

/**
 * The fault tests' latency proxy must delay without reordering: a stage waited forever on a
 * PostgreSQL answer whose bytes a timer per chunk had delivered out of order.
 */
const server = createServer((socket) => {
  // Many small writes, each its own chunk as far as the proxy's reads go (mostly): 0..CHUNKS-1 in order.
  let i = 0;
  const next = () => {
    if (i === CHUNKS) return void socket.end();
    socket.write(`${i++},`);
    setImmediate(next);
  };
  next();
});
const CHUNKS = 2_000;
let proxy: LatencyProxy;

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  proxy = await startLatencyProxy({ host: '127.0.0.1', port: (server.address() as AddressInfo).port }, 5);
});

afterAll(async () => {
  await proxy.close();
  server.close();
});

it('delivers the server\'s bytes in the order it sent them, all of them', async () => {
  const client = connect(proxy.port, '127.0.0.1');
  let received = '';
  client.on('data', (chunk: Buffer) => (received += chunk.toString()));
  await once(client, 'close');
  expect(received.split(',').filter((s) => s !== '').map(Number)).toEqual(Array.from({ length: CHUNKS }, (_, i) => i));
});

it('replaces the host and port of a URL with its own', () => {
  expect(proxy.through('postgres://u:p@db.example:5432/x?sslmode=disable')).toBe(`postgres://u:p@127.0.0.1:${proxy.port}/x?sslmode=disable`);
});
