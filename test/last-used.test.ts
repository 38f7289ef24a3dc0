/**
 * LastUsedRecorder (src/keys/last-used.ts) keeps a batch the database refused for the next flush, so a
 * database outage delays last-used times but loses none (crash-safety.test.ts covers kill -9: at most the
 * last flush interval is lost). The repository's one method is stood in for, to make a flush fail on demand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KeysRepository } from '../src/keys/keys.repository.ts';
import { LastUsedRecorder } from '../src/keys/last-used.ts';
import { createLogger } from '../src/log/logger.ts';

test('a failed flush is retried by the next one; a later use wins over the kept time', async () => {
  const written: Array<{ id: string; at: string }> = [];
  let failNext = true;
  const repo = {
    touchLastUsed(entries: Array<{ id: string; at: string }>): Promise<void> {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('connection terminated'));
      }
      written.push(...entries);
      return Promise.resolve();
    },
  } as unknown as KeysRepository;
  const recorder = new LastUsedRecorder(repo, 60_000, createLogger({ level: 'silent' }));
  recorder.record('k1', Date.parse('2026-01-01T00:00:01Z'));
  recorder.record('k2', Date.parse('2026-01-01T00:00:02Z'));
  await recorder.flush();
  assert.equal(written.length, 0, 'the database refused the first batch');
  recorder.record('k2', Date.parse('2026-01-01T00:00:05Z'));
  await recorder.flush();
  assert.deepEqual(
    written.sort((a, b) => a.id.localeCompare(b.id)),
    [
      { id: 'k1', at: '2026-01-01T00:00:01.000Z' },
      { id: 'k2', at: '2026-01-01T00:00:05.000Z' },
    ],
  );
  await recorder.flush();
  assert.equal(written.length, 2, 'nothing is written twice');
});
