import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelay, classifyStatus, retryAfterMs } from '../../src/logs/backoff.js';
import { batchOf, Batcher, RECORD_OVERHEAD } from '../../src/logs/batcher.js';
import { record } from './helpers.js';

describe('Batcher', () => {
  test('full by count', () => {
    const b = new Batcher({ maxRecords: 3, maxBytes: 1 << 20, maxWaitMs: 1000 });
    b.add(record({ cursor: 'c1' }), 0);
    b.add(record({ cursor: 'c2' }), 0);
    assert.equal(b.full, false);
    b.add(record({ cursor: 'c3' }), 0);
    assert.equal(b.full, true);
    const batch = b.take()!;
    assert.equal(batch.records.length, 3);
    assert.equal(batch.cursor, 'c3');
    assert.equal(b.size, 0);
    assert.equal(b.take(), undefined);
  });

  test('full by bytes', () => {
    const b = new Batcher({ maxRecords: 1000, maxBytes: 1000, maxWaitMs: 1000 });
    b.add(record({ message: 'x'.repeat(1000 - RECORD_OVERHEAD - 1) }), 0);
    assert.equal(b.full, false);
    b.add(record({ message: '' }), 0);
    assert.equal(b.full, true);
  });

  test('due by time since its first record', () => {
    const b = new Batcher({ maxRecords: 10, maxBytes: 1 << 20, maxWaitMs: 250 });
    assert.equal(b.dueAt, undefined);
    b.add(record(), 100);
    b.add(record(), 300);
    assert.equal(b.dueAt, 350);
    assert.equal(b.ready(349), false);
    assert.equal(b.ready(350), true);
  });

  test('the cursor of a batch is the last one its records carry', () => {
    assert.equal(batchOf([record({ cursor: 'a' }), record({ cursor: undefined })]).cursor, 'a');
    assert.equal(batchOf([record({ cursor: undefined })]).cursor, undefined);
  });
});

describe('backoff', () => {
  test('grows exponentially, with jitter within [step/2, step], capped', () => {
    const p = { baseMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(0, p, () => 0), 50);
    assert.equal(backoffDelay(0, p, () => 1), 100);
    assert.equal(backoffDelay(3, p, () => 0), 400);
    assert.equal(backoffDelay(3, p, () => 1), 800);
    assert.equal(backoffDelay(10, p, () => 1), 1000);
    assert.equal(backoffDelay(1000, p, () => 0.5), 750);
  });

  test('what an HTTP status means for a batch', () => {
    assert.deepEqual([200, 204, 400, 401, 404, 408, 413, 422, 429, 500, 503, 302].map(classifyStatus), ['ok', 'ok', 'reject', 'reject', 'reject', 'retry', 'split', 'reject', 'retry', 'retry', 'retry', 'retry']);
  });

  test('Retry-After in seconds or as a date, capped', () => {
    assert.equal(retryAfterMs('3', 0, 60_000), 3000);
    assert.equal(retryAfterMs('3600', 0, 60_000), 60_000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000, 60_000), 6000);
    assert.equal(retryAfterMs('soon', 0, 60_000), undefined);
    assert.equal(retryAfterMs(undefined, 0, 60_000), undefined);
  });
});
