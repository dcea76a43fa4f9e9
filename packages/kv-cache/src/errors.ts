/**
 * Typed failures of the KV cache. Expected outcomes (no free blocks) are values, not errors; these are
 * either bugs in the caller (unknown sequence) or bad input from a peer (malformed page buffer).
 */

/** A sequence id the manager does not know (never allocated, or already freed). */
export class UnknownSequenceError extends Error {
  override readonly name = 'UnknownSequenceError';
  readonly code = 'unknown-sequence';
  readonly seqId: string;

  constructor(seqId: string) {
    super(`unknown sequence ${JSON.stringify(seqId)}`);
    this.seqId = seqId;
  }
}

/** `allocate` for a sequence that already has a block table (grow it with `appendSlots`). */
export class DuplicateSequenceError extends Error {
  override readonly name = 'DuplicateSequenceError';
  readonly code = 'duplicate-sequence';
  readonly seqId: string;

  constructor(seqId: string) {
    super(`sequence ${JSON.stringify(seqId)} already has blocks`);
    this.seqId = seqId;
  }
}

/** A page buffer that does not follow the format (truncated, bad magic, inconsistent lengths). */
export class MalformedPagesError extends Error {
  override readonly name = 'MalformedPagesError';
  readonly code = 'malformed-kv-pages';
}

/** A page buffer of a format version this build does not read (peer running another release). */
export class UnsupportedPagesVersionError extends Error {
  override readonly name = 'UnsupportedPagesVersionError';
  readonly code = 'unsupported-kv-pages-version';
  readonly version: number;

  constructor(version: number) {
    super(`unsupported KV page format version ${version}`);
    this.version = version;
  }
}

/** A page whose payload does not match the CRC-32 its sender wrote (corrupted in a store or in flight). */
export class PageChecksumError extends Error {
  override readonly name = 'PageChecksumError';
  readonly code = 'kv-page-checksum';
  readonly blockHash: string;
  /** Index of the page within its buffer. */
  readonly pageIndex: number;

  constructor(blockHash: string, pageIndex: number) {
    super(`KV page ${pageIndex} (block ${blockHash.slice(0, 16)}…) failed its CRC-32 check`);
    this.blockHash = blockHash;
    this.pageIndex = pageIndex;
  }
}
