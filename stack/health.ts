import { createServer, Socket } from 'node:net';
import { readdir, readFile, readlink } from 'node:fs/promises';

const LOOPBACK = '127.0.0.1';

/** True when something accepts a TCP connection on the port within the timeout. */
export function tcpAccepts(port: number, timeoutMs = 1000, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, host);
  });
}

/** True on a 2xx answer within the timeout; the body is discarded. */
export async function httpOk(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Sends a Kafka ApiVersions v0 request and waits for the answer with the same correlation id: the
 * broker's request handlers are up, which an open port alone does not prove. Any error code
 * counts as an answer (a broker that dropped v0 still replies, with UNSUPPORTED_VERSION).
 */
export function kafkaAnswers(port: number, timeoutMs = 2000, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const clientId = Buffer.from('personahub-stack-health');
    const correlationId = 0x5048;
    const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
    body.writeInt16BE(18, 0); // ApiVersions
    body.writeInt16BE(0, 2);
    body.writeInt32BE(correlationId, 4);
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length, 0);

    const socket = new Socket();
    let received = Buffer.alloc(0);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 8) done(received.readInt32BE(4) === correlationId);
    });
    socket.once('connect', () => socket.write(Buffer.concat([size, body])));
    socket.connect(port, host);
  });
}

/** True when the port can be bound on loopback, i.e. no other process listens there. */
export function portFree(port: number, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** Parses /proc/net/tcp{,6} text: the socket inodes listening on `port`. */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const inodes: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    const state = cols[3];
    const inode = cols[9];
    if (!local || !inode || state !== '0A') continue;
    const hexPort = local.slice(local.lastIndexOf(':') + 1);
    if (Number.parseInt(hexPort, 16) === port) inodes.push(inode);
  }
  return inodes;
}

/**
 * Best effort, for error messages: which process listens on the port (needs /proc and, for other
 * users' processes, root). Null when it cannot be told.
 */
export async function portOwner(port: number): Promise<{ pid: number; command: string } | null> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const i of listeningInodes(await readFile(file, 'utf8'), port)) inodes.add(`socket:[${i}]`);
    } catch {
      // no /proc (not Linux) or no IPv6: nothing to add
    }
  }
  if (inodes.size === 0) return null;
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (inodes.has(await readlink(`/proc/${pid}/fd/${fd}`))) {
          const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
          return { pid: Number(pid), command: cmdline.length > 160 ? `${cmdline.slice(0, 160)}...` : cmdline };
        }
      } catch {
        // the fd or process went away meanwhile
      }
    }
  }
  return null;
}
