import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { events, topicName, type EventName } from '../../../topology/index.ts';

const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'CONSUMERS.md'), 'utf8');

describe('docs/CONSUMERS.md', () => {
  it('its topic table names every topic of the topology, with its schema, and no other', () => {
    const table = doc.slice(doc.indexOf('## Topics'), doc.indexOf('## Keys'));
    const rows = table.split('\n').filter((l) => l.startsWith('| `personahub.'));
    const named = rows.flatMap((r) => [...(r.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]));
    expect(named.sort()).toEqual((Object.keys(events) as EventName[]).map((e) => topicName('personahub', e)).sort());
    for (const e of Object.keys(events) as EventName[]) {
      const row = rows.find((r) => r.includes(`\`${topicName('personahub', e)}\``));
      expect(row, e).toContain(`\`${events[e].schema}\``);
    }
  });
});
