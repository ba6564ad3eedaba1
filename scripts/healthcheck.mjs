#!/usr/bin/env node
// The container image's HEALTHCHECK, one for every role. It finds the personahub process of this image
// (`node <dir>/dist/cli/main.js <role...>`, <dir> being this script's folder), reads its role from its
// arguments and its settings from its environment, and probes it:
//   processor <stage> | run   GET /health/live on PERSONAHUB_METRICS_PORT (liveness, not readiness: a stage
//                             waiting out a broker or registry outage is alive and must not be restarted)
//   llm serve                 GET /health on PERSONAHUB_LLM_PORT (default 18434)
//   anything else             nothing to probe (one-shot jobs such as `topics init`): healthy
// Exit 0 healthy, 1 not. Kubernetes does not use it: the chart's probes call the same endpoints.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = join(dirname(fileURLToPath(import.meta.url)), 'dist', 'cli', 'main.js');

/** Arguments and environment of the process running this image's CLI, or null. */
function findApp() {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const at = argv.indexOf(main);
      if (at < 0) continue;
      const env = Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => {
        const i = kv.indexOf('=');
        return [kv.slice(0, i), kv.slice(i + 1)];
      }));
      return { pid, args: argv.slice(at + 1), env };
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return null;
}

async function get(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await res.body?.cancel();
    return res.status;
  } catch (error) {
    return `${error.cause?.code ?? error.name}`;
  }
}

function done(ok, message) {
  console.log(`${ok ? 'healthy' : 'unhealthy'}: ${message}`);
  process.exit(ok ? 0 : 1);
}

const app = findApp();
if (!app) done(false, `no process runs ${main}`);
const [command, sub] = app.args;
if (command === 'processor' || command === 'run') {
  const port = Number(app.env.PERSONAHUB_METRICS_PORT ?? '0');
  if (!(port > 0)) done(true, `${command}: PERSONAHUB_METRICS_PORT is 0, nothing to probe`);
  const status = await get(`http://127.0.0.1:${port}/health/live`);
  done(status === 200, `${app.args.join(' ')} (pid ${app.pid}): /health/live on ${port} answered ${status}`);
} else if (command === 'llm' && sub === 'serve') {
  const port = Number(app.env.PERSONAHUB_LLM_PORT ?? '18434');
  const status = await get(`http://127.0.0.1:${port}/health`);
  done(status === 200, `llm serve (pid ${app.pid}): /health on ${port} answered ${status}`);
} else {
  done(true, `${app.args.join(' ') || '(no command)'} (pid ${app.pid}): nothing to probe`);
}
