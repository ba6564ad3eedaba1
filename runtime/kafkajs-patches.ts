import { createRequire } from 'node:module';

/**
 * A fix for kafkajs 2.2.4's read_committed filter, installed before kafkajs is first loaded (this
 * module is the first import of runtime/kafka.ts, the one module that loads kafkajs).
 *
 * The broker lists a fetch's aborted transactions in the order of their abort markers; kafkajs's
 * filterAbortedMessages assumes the order of their first offsets and activates at most one aborted
 * transaction per record, so when two transactions on one partition were aborted in another order than
 * they began (a killed or fenced instance leaves several open), records of an aborted transaction reach
 * read_committed consumers. The Java client sorts by first offset and activates every transaction that
 * has begun; so does this replacement. test/unit/runtime/kafkajs-patches.test.ts shows the difference.
 */

interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  batchContext: { producerId: string | number; inTransaction: boolean };
}

interface AbortedTransaction {
  firstOffset: string;
  producerId: string | number;
}

const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]);

const isAbortMarker = (m: FetchedMessage): boolean => m.key !== null && m.key !== undefined && Buffer.from(m.key).equals(ABORT_MARKER_KEY);

export function filterAbortedMessages({ messages, abortedTransactions }: { messages: FetchedMessage[]; abortedTransactions?: AbortedTransaction[] }): FetchedMessage[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const pending = [...abortedTransactions].sort((a, b) => (BigInt(a.firstOffset) < BigInt(b.firstOffset) ? -1 : BigInt(a.firstOffset) > BigInt(b.firstOffset) ? 1 : 0));
  const aborted = new Set<string>();
  return messages.filter((message) => {
    const offset = BigInt(message.offset);
    while (pending.length > 0 && offset >= BigInt(pending[0]?.firstOffset ?? 0)) aborted.add(String(pending.shift()?.producerId));
    const producerId = String(message.batchContext.producerId);
    if (isAbortMarker(message)) {
      // The marker ends the producer's aborted transaction; kafkajs drops control records later.
      aborted.delete(producerId);
      return true;
    }
    return !(message.batchContext.inTransaction && aborted.has(producerId));
  });
}

const require = createRequire(import.meta.url);
const path = require.resolve('kafkajs/src/consumer/filterAbortedMessages.js');
// Loading it once puts it in the CommonJS cache; replacing its exports there is what kafkajs's batch.js
// then gets from its own require, provided kafkajs had not been loaded yet.
require(path);
const cached = require.cache[path];
if (cached) cached.exports = filterAbortedMessages;
