import { describe, expect, it } from 'vitest';
import { RouteLedger } from '../src/route-ledger.ts';

describe('RouteLedger', () => {
  it('counts prefill tokens until the first token and the request until it ends', () => {
    const ledger = new RouteLedger();
    ledger.routed('r1', 'a', 100, ['h1', 'h2']);
    ledger.routed('r2', 'a', 50, ['h1']);
    ledger.routed('r3', 'b', 10, []);
    expect(ledger.pending()).toEqual(
      new Map([
        ['a', { prefillTokens: 150, sequences: 2 }],
        ['b', { prefillTokens: 10, sequences: 1 }],
      ]),
    );
    ledger.prefilled('r1');
    ledger.prefilled('r1'); // every later token says the same: counted once
    expect(ledger.pending().get('a')).toEqual({ prefillTokens: 50, sequences: 2 });
    ledger.finished('r1');
    ledger.finished('r2');
    ledger.finished('r2');
    expect(ledger.pending().has('a')).toBe(false);
    expect(ledger.size).toBe(1);
  });

  it('predicts the leading blocks an engine will hold from the prompts sent to it', () => {
    const ledger = new RouteLedger();
    ledger.routed('r1', 'a', 100, ['h1', 'h2', 'h3']);
    ledger.routed('r2', 'b', 100, ['h1', 'x2']);
    expect(ledger.predictedOverlap(['h1', 'h2', 'y3'])).toEqual(
      new Map([
        ['a', 2],
        ['b', 1],
      ]),
    );
    ledger.finished('r1');
    expect(ledger.predictedOverlap(['h1', 'h2'])).toEqual(new Map([['b', 1]]));
  });

  it('routing a request again moves it, and entries whose end never arrived expire', () => {
    let now = 0;
    const ledger = new RouteLedger({ maxAgeMs: 1_000, now: () => now });
    ledger.routed('r1', 'a', 100, ['h1']);
    ledger.routed('r1', 'b', 30, ['h1']);
    expect(ledger.pending()).toEqual(new Map([['b', { prefillTokens: 30, sequences: 1 }]]));
    now = 1_001;
    expect(ledger.pending().size).toBe(0);
    expect(ledger.size).toBe(0);
  });

  it('says when its view of an engine last changed, so a load report older than that can be set aside', () => {
    let now = 100;
    const ledger = new RouteLedger({ now: () => now });
    expect(ledger.changedAtMs('a')).toBeUndefined();
    ledger.routed('r1', 'a', 10, []);
    expect(ledger.changedAtMs('a')).toBe(100);
    now = 150;
    ledger.prefilled('r1');
    expect(ledger.changedAtMs('a')).toBe(150);
    now = 180;
    ledger.finished('r1');
    expect(ledger.changedAtMs('a')).toBe(180);
    expect(ledger.changedAtMs('b')).toBeUndefined();
  });
});
