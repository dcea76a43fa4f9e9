import { describe, expect, it } from 'vitest';
import { asBlockHash, type BlockHash } from '../src/block-hash.ts';
import { KvEventBatcher, type KvEventBatch } from '../src/kv-events.ts';
import { ClusterPrefixIndex } from '../src/prefix-index.ts';

const NS = 'ab'.repeat(32);
const h = (n: number): BlockHash => asBlockHash(n.toString(16).padStart(64, '0'));
const chain = (...ns: number[]) => ns.map(h);

function batch(engineId: string, seq: number, over: Partial<KvEventBatch> = {}): KvEventBatch {
  return { engineId, epoch: 'e1', seq, namespace: NS, snapshot: false, atMs: 1000, ops: [], ...over };
}
const stored = (...ns: number[]) => ({ type: 'stored' as const, hashes: chain(...ns) });
const removed = (...ns: number[]) => ({ type: 'removed' as const, hashes: chain(...ns) });

describe('KvEventBatcher', () => {
  it('groups consecutive events of one type into one op and numbers batches from 1', () => {
    const b = new KvEventBatcher({ engineId: 'a', epoch: 'e1', namespace: NS });
    expect(b.takeBatch(1000)).toBeUndefined();
    for (const n of [1, 2, 3]) b.add({ type: 'stored', blockHash: h(n), blockId: n });
    b.add({ type: 'removed', blockHash: h(1), blockId: 1 });
    b.add({ type: 'stored', blockHash: h(4), blockId: 1 });
    expect(b.numPending).toBe(5);
    expect(b.takeBatch(1000)).toEqual(batch('a', 1, { ops: [stored(1, 2, 3), removed(1), stored(4)] }));
    expect(b.numPending).toBe(0);
    b.add({ type: 'removed', blockHash: h(2), blockId: 2 });
    expect(b.takeBatch(1000)?.seq).toBe(2);
  });

  it('numbers a snapshot in the same sequence and folds pending events into it', () => {
    const b = new KvEventBatcher({ engineId: 'a', epoch: 'e1', namespace: NS });
    b.add({ type: 'stored', blockHash: h(1), blockId: 1 });
    expect(b.takeBatch(1000)?.seq).toBe(1);
    b.add({ type: 'stored', blockHash: h(2), blockId: 2 });
    expect(b.takeSnapshot(chain(1, 2), 1000)).toEqual(batch('a', 2, { snapshot: true, ops: [stored(1, 2)] }));
    expect(b.takeBatch(1000)).toBeUndefined();
  });
});

describe('ClusterPrefixIndex', () => {
  const index = (maxEntries = 100) => new ClusterPrefixIndex({ namespace: NS, maxEntries });

  it('counts, per engine, the leading blocks of a prefix chain it holds', () => {
    const ix = index();
    expect(ix.apply(batch('a', 1, { ops: [stored(1, 2, 3)] }))).toEqual({ ok: true, kind: 'applied' });
    ix.apply(batch('b', 1, { ops: [stored(1, 2, 9)] }));
    ix.apply(batch('c', 1, { ops: [stored(2, 3)] })); // holds later blocks but not the first: no prefix
    expect(ix.overlap(chain(1, 2, 3, 4))).toEqual(
      new Map([
        ['a', 3],
        ['b', 2],
      ]),
    );
    expect(ix.overlap(chain(7, 1))).toEqual(new Map());
    expect(ix.overlap([])).toEqual(new Map());
    expect(ix.numEntries).toBe(8);
    expect(ix.numHashes).toBe(4);
  });

  it('gives each holder’s unbroken run from a later block (a fetcher that has the head already)', () => {
    const ix = index();
    ix.apply(batch('a', 1, { ops: [stored(1, 2)] })); // the head
    ix.apply(batch('store', 1, { ops: [stored(3, 4, 5)] })); // the evicted tail
    ix.apply(batch('c', 1, { ops: [stored(2, 3)] }));
    const hashes = chain(1, 2, 3, 4, 5, 6);
    expect(ix.runsFrom(hashes, 0)).toEqual(new Map([['a', 2]]));
    expect(ix.runsFrom(hashes, 2)).toEqual(
      new Map([
        ['store', 5],
        ['c', 3],
      ]),
    );
    expect(ix.runsFrom(hashes, 5)).toEqual(new Map());
    expect(ix.runsFrom(hashes, 9)).toEqual(new Map());
  });

  it('applies removals, and ignores a batch it has already seen (a replay)', () => {
    const ix = index();
    ix.apply(batch('a', 1, { ops: [stored(1, 2, 3)] }));
    ix.apply(batch('a', 2, { ops: [removed(3), stored(4)] }));
    expect(ix.apply(batch('a', 2, { ops: [stored(3)] }))).toEqual({ ok: true, kind: 'duplicate' });
    expect(ix.overlap(chain(1, 2, 3))).toEqual(new Map([['a', 2]]));
    expect(ix.engines().get('a')).toEqual({ epoch: 'e1', seq: 2, trusted: true, numBlocks: 3 });
  });

  it('drops an engine’s entries at a gap in its numbers and trusts it again only after a snapshot', () => {
    const ix = index();
    ix.apply(batch('a', 1, { ops: [stored(1, 2)] }));
    expect(ix.apply(batch('a', 3, { ops: [stored(3)] }))).toEqual({
      ok: false,
      reason: 'gap',
      engineId: 'a',
      expectedSeq: 2,
      seq: 3,
    });
    expect(ix.overlap(chain(1, 2, 3))).toEqual(new Map());
    expect(ix.apply(batch('a', 4, { ops: [stored(4)] }))).toEqual({ ok: false, reason: 'untrusted', engineId: 'a' });
    expect(ix.numEntries).toBe(0);
    ix.apply(batch('a', 5, { snapshot: true, ops: [stored(1, 2, 3)] }));
    expect(ix.overlap(chain(1, 2, 3))).toEqual(new Map([['a', 3]]));
    ix.apply(batch('a', 6, { ops: [stored(4)] }));
    expect(ix.engines().get('a')?.numBlocks).toBe(4);
  });

  it('starts a late reader at its first snapshot, and a restarted engine (new epoch) from scratch', () => {
    const ix = index();
    expect(ix.apply(batch('a', 7, { ops: [stored(1)] }))).toMatchObject({ ok: false, reason: 'gap', expectedSeq: 1 });
    ix.apply(batch('a', 8, { snapshot: true, ops: [stored(1, 2)] }));
    expect(ix.overlap(chain(1, 2))).toEqual(new Map([['a', 2]]));
    // Restarted: epoch e2 batch 1 replaces everything the old epoch said.
    ix.apply(batch('a', 1, { epoch: 'e2', ops: [stored(5)] }));
    expect(ix.overlap(chain(1, 2))).toEqual(new Map());
    expect(ix.overlap(chain(5))).toEqual(new Map([['a', 1]]));
  });

  it('refuses batches of another namespace (other weights, dtype, block size or tenant salt)', () => {
    const ix = index();
    expect(ix.apply(batch('a', 1, { namespace: 'cd'.repeat(32), ops: [stored(1)] }))).toEqual({
      ok: false,
      reason: 'namespace',
      engineId: 'a',
    });
    expect(ix.numEntries).toBe(0);
  });

  it('forgets an engine that leaves', () => {
    const ix = index();
    ix.apply(batch('a', 1, { ops: [stored(1, 2)] }));
    ix.apply(batch('b', 1, { ops: [stored(1)] }));
    ix.removeEngine('a');
    expect(ix.overlap(chain(1, 2))).toEqual(new Map([['b', 1]]));
    expect(ix.numEntries).toBe(1);
    expect([...ix.engines().keys()]).toEqual(['b']);
  });

  it('stays within maxEntries by forgetting the least recently stored hashes first', () => {
    const ix = index(4);
    ix.apply(batch('a', 1, { ops: [stored(1, 2, 3)] }));
    ix.apply(batch('b', 1, { ops: [stored(1)] })); // hash 1 is now the most recently stored
    ix.apply(batch('a', 2, { ops: [stored(4, 5)] }));
    expect(ix.numEntries).toBe(4);
    expect(ix.numEvicted).toBe(2);
    // Hashes 2 and 3 went first; 1 (re-stored by b) survived.
    expect(ix.overlap(chain(1))).toEqual(
      new Map([
        ['a', 1],
        ['b', 1],
      ]),
    );
    expect(ix.overlap(chain(1, 2))).toEqual(
      new Map([
        ['a', 1],
        ['b', 1],
      ]),
    );
    expect(ix.engines().get('a')?.numBlocks).toBe(3);
  });
});
