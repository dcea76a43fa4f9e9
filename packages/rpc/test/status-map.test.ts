import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  DeadlineExceededError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from '../src/index.ts';
import { fromWireStatus, toWireStatus } from '../src/status-map.ts';

describe('status map', () => {
  it('maps typed errors to their gRPC status with their message', () => {
    expect(toWireStatus(new InvalidArgumentError('bad shape'))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'bad shape',
    });
    expect(toWireStatus(new NotFoundError('no expert 9'))).toEqual({ code: status.NOT_FOUND, details: 'no expert 9' });
    expect(toWireStatus(new UnavailableError('draining')).code).toBe(status.UNAVAILABLE);
    expect(toWireStatus(new DeadlineExceededError('late')).code).toBe(status.DEADLINE_EXCEEDED);
  });

  it('answers anything else with a generic INTERNAL that leaks nothing', () => {
    expect(toWireStatus(new Error('ENOENT /secret/path'))).toEqual({
      code: status.INTERNAL,
      details: 'internal error',
    });
    expect(toWireStatus(new InternalError('onnx session 3 crashed')).details).toBe('internal error');
    expect(toWireStatus('a string')).toEqual({ code: status.INTERNAL, details: 'internal error' });
  });

  it('turns received statuses back into typed errors', () => {
    expect(fromWireStatus(status.INVALID_ARGUMENT, 'x')).toBeInstanceOf(InvalidArgumentError);
    expect(fromWireStatus(status.UNAVAILABLE, 'x')).toBeInstanceOf(UnavailableError);
    expect(fromWireStatus(status.DEADLINE_EXCEEDED, 'x')).toBeInstanceOf(DeadlineExceededError);
    const unknown = fromWireStatus(status.UNIMPLEMENTED, 'no such method');
    expect(unknown).toBeInstanceOf(InternalError);
    expect(unknown.message).toBe('UNIMPLEMENTED: no such method');
  });
});
