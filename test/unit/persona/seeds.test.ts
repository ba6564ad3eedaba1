import { describe, expect, it } from 'vitest';
import { seedId } from '../../../persona/ids.ts';
import { parseSeedLines } from '../../../persona/seeds.ts';

const opts = { source: 'file.jsonl', format: 'jsonl' as const, maxChars: 100, now: 1 };

describe('seed ids', () => {
  it('hash normalized text + source: case and whitespace do not matter, the source does', () => {
    expect(seedId('Hello  World', 'a')).toBe(seedId('hello world', 'a'));
    expect(seedId('Hello World', 'a')).not.toBe(seedId('Hello World', 'b'));
    expect(seedId('x', 'a')).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('parseSeedLines', () => {
  it('turns JSONL objects into seeds, taking a per-line source when given', () => {
    const r = parseSeedLines(['{"text":"first seed"}', '{"text":"second","source":"forum"}'], opts);
    expect(r.seeds.map((s) => [s.text, s.source, s.lineNumber])).toEqual([['first seed', 'file.jsonl', 1], ['second', 'forum', 2]]);
    expect(r.rejected).toEqual([]);
  });

  it('rejects empty, oversize, non-JSON and text-less lines with a reason and line number', () => {
    const r = parseSeedLines(['', '{"text":"   "}', `{"text":"${'x'.repeat(101)}"}`, 'not json', '{"body":"no text"}', '{"text":"ok"}'], opts);
    expect(r.rejected.map((x) => [x.line, x.reason])).toEqual([[1, 'EMPTY'], [2, 'EMPTY'], [3, 'TOO_LONG'], [4, 'BAD_JSON'], [5, 'NO_TEXT']]);
    expect(r.rejected[2]?.detail).toMatch(/101 chars > 100/);
    expect(r.seeds).toHaveLength(1);
  });

  it('counts repeated seeds in one file once', () => {
    const r = parseSeedLines(['same text', 'Same  text', 'other'], { ...opts, format: 'text' });
    expect(r.seeds).toHaveLength(2);
    expect(r.duplicates).toBe(1);
  });
});

describe('a named run', () => {
  it('makes the same lines other seeds, with the run in their source', () => {
    const lines = ['{"text": "The ferry timetable changes on Monday.", "source": "news"}', 'plain line'];
    const plain = parseSeedLines(lines, { source: 'f', format: 'jsonl', maxChars: 100, now: 0 }).seeds;
    const run = parseSeedLines(lines, { source: 'f', format: 'jsonl', maxChars: 100, now: 0, run: 'demo-1' }).seeds;
    expect(run.map((s) => s.source)).toEqual(['news@demo-1']);
    expect(run[0]?.id).not.toBe(plain[0]?.id);
    expect(parseSeedLines(lines, { source: 'f', format: 'jsonl', maxChars: 100, now: 5, run: 'demo-1' }).seeds[0]?.id).toBe(run[0]?.id);
  });
});
