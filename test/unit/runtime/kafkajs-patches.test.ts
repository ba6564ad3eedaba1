import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { filterAbortedMessages } from '../../../runtime/kafkajs-patches.ts';
import '../../../runtime/kafka.ts';

const marker = (offset: number, producerId: string) => ({ offset: String(offset), key: Buffer.from([0, 0, 0, 0]), batchContext: { producerId, inTransaction: true } });
const record = (offset: number, producerId: string) => ({ offset: String(offset), key: Buffer.from(`k${offset}`), batchContext: { producerId, inTransaction: true } });

/**
 * Producer A opens a transaction at offset 0, producer B at 1; B is aborted first (marker at 3), A
 * second (marker at 4); C commits at 5. The broker lists the aborted transactions in marker order (B, A).
 */
const messages = [record(0, 'A'), record(1, 'B'), record(2, 'A'), marker(3, 'B'), marker(4, 'A'), record(5, 'C')];
const abortedTransactions = [{ firstOffset: '1', producerId: 'B' }, { firstOffset: '0', producerId: 'A' }];

describe('read_committed filter (kafkajs fix)', () => {
  it('drops every record of transactions aborted in another order than they began', () => {
    const kept = filterAbortedMessages({ messages, abortedTransactions }).filter((m) => !m.key?.equals(Buffer.from([0, 0, 0, 0])));
    expect(kept.map((m) => m.offset)).toEqual(['5']);
  });

  it('is what kafkajs uses once runtime/kafka.ts is loaded (the unpatched filter lets offset 0 through)', () => {
    const require = createRequire(import.meta.url);
    const installed = require('kafkajs/src/consumer/filterAbortedMessages.js') as typeof filterAbortedMessages;
    expect(installed).toBe(filterAbortedMessages);
  });

  it('keeps committed records and non-transactional ones', () => {
    const plain = { offset: '7', key: null, batchContext: { producerId: '-1', inTransaction: false } };
    expect(filterAbortedMessages({ messages: [record(6, 'C'), plain], abortedTransactions: [{ firstOffset: '0', producerId: 'A' }] }).map((m) => m.offset)).toEqual(['6', '7']);
    expect(filterAbortedMessages({ messages: [record(6, 'C')] }).map((m) => m.offset)).toEqual(['6']);
  });
});
