import { isBlockHash, type BlockHash, type KvEventBatch, type KvEventOp } from '@switchyard/kv-cache';
import { InvalidMessageError } from './errors.ts';
import { asObject, parseJsonObject, readBoolean, readNumber, readString, readStringArray } from './json-shape.ts';

/** Wire form of a KV event batch: JSON, the hashes as lower-case hex. */
export function encodeKvEventBatch(batch: KvEventBatch): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(batch));
}

/** Parses and checks a KV event batch; anything malformed is an InvalidMessageError naming the field. */
export function decodeKvEventBatch(data: Uint8Array | string): KvEventBatch {
  const o = parseJsonObject(data, 'the KV event batch');
  const rawOps = o['ops'];
  if (!Array.isArray(rawOps)) throw new InvalidMessageError('KV event batch: ops must be an array');
  const ops: KvEventOp[] = rawOps.map((raw: unknown, i) => {
    const op = asObject(raw, `ops[${i}]`);
    const type = readString(op, 'type');
    if (type !== 'stored' && type !== 'removed')
      throw new InvalidMessageError(`KV event batch: ops[${i}].type is ${type}`);
    const hashes = readStringArray(op, 'hashes');
    const bad = hashes.find((h) => !isBlockHash(h));
    if (bad !== undefined) throw new InvalidMessageError(`KV event batch: ops[${i}] has a malformed block hash`);
    return { type, hashes: hashes as BlockHash[] };
  });
  return {
    engineId: readString(o, 'engineId', { nonEmpty: true }),
    epoch: readString(o, 'epoch', { nonEmpty: true }),
    seq: readNumber(o, 'seq', { integer: true, min: 1 }),
    namespace: readString(o, 'namespace', { nonEmpty: true }),
    snapshot: readBoolean(o, 'snapshot'),
    atMs: readNumber(o, 'atMs', { min: 0 }),
    ops,
  };
}
