import { setFlagsFromString } from 'node:v8';

/**
 * Imported first by cli/main.ts, before any other module loads: V8 is told to favour a small heap over
 * speed. With its default growth, a stage process working through a backlog let its heap grow to about
 * twice what was live (the draft stage: 226 MiB of heap for 60 to 145 MiB used, RSS 348 MiB and still
 * rising after 200,000 seeds); with this flag the same run stays near 140 MiB, flat (docs/BENCHMARKS.md,
 * memory under backlog, which also gives what it may cost in speed, not yet measured on its own). V8
 * options cannot be given in NODE_OPTIONS, and the flag must reach every way the command starts (the
 * container's entrypoint, the `personahub` script, the tests' and benchmarks' child processes), so it is
 * set here, once. It only steers when the collector runs and how far the heap may grow, which V8 reads
 * as it goes.
 */
setFlagsFromString('--optimize-for-size');
