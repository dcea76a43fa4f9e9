import { describe, expect, it } from 'vitest';
import {
  cancelSubject,
  escapeToken,
  requestIdOfControl,
  requestSubject,
  resendSubject,
  tokenSubject,
  unescapeToken,
} from '../src/subjects.ts';
import { redactSecrets, redactUrl, splitUrlCredentials } from '../src/redact-url.ts';
import { InvalidSubjectTokenError } from '../src/errors.ts';

describe('subjects', () => {
  it('escapes a model name with dots, slashes and wildcards into one safe token', () => {
    expect(requestSubject('org/model.v2')).toBe('switchyard.v1.requests.org_2Fmodel_2Ev2');
    expect(escapeToken('a*b>c d_e')).toBe('a_2Ab_3Ec_20d_5Fe');
    expect(escapeToken('tiny')).toBe('tiny');
  });

  it('round-trips any string, unicode included, and is injective', () => {
    for (const raw of ['tiny', 'a.b', 'a_2Eb', 'ünï/cødé', '_', '-', 'cmpl-0123abcd'])
      expect(unescapeToken(escapeToken(raw))).toBe(raw);
    expect(escapeToken('a.b')).not.toBe(escapeToken('a_2Eb'));
  });

  it('refuses an empty token and a token it could not have produced', () => {
    expect(() => escapeToken('')).toThrow(InvalidSubjectTokenError);
    expect(() => unescapeToken('a.b')).toThrow(InvalidSubjectTokenError);
    expect(() => unescapeToken('a_zz')).toThrow(InvalidSubjectTokenError);
  });

  it('names token, cancel and resend subjects by request id and reads the id back', () => {
    expect(tokenSubject('cmpl-1')).toBe('switchyard.v1.tokens.cmpl-1');
    expect(requestIdOfControl(cancelSubject('r.1'))).toBe('r.1');
    expect(requestIdOfControl(resendSubject('r.1'))).toBe('r.1');
    expect(requestIdOfControl('switchyard.v1.tokens.r1')).toBeUndefined();
  });
});

describe('redactUrl', () => {
  it('drops user:password and token userinfo from every URL of a list', () => {
    expect(redactUrl('nats://alice:s3cret@10.0.0.1:4222')).toBe('nats://10.0.0.1:4222');
    expect(redactUrl('tls://tok@h:1, nats://h2:2')).toBe('tls://h:1,nats://h2:2');
    expect(redactUrl('a:b@127.0.0.1:4222')).toBe('127.0.0.1:4222');
    expect(redactUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
  });

  it('splits percent-decoded credentials out of the URLs for the client', () => {
    expect(splitUrlCredentials('nats://al%40ce:p%3Ass@h:1,nats://h2:2')).toEqual({
      servers: ['nats://h:1', 'nats://h2:2'],
      user: 'al@ce',
      pass: 'p:ss',
    });
    expect(splitUrlCredentials('tls://s3cr3t@h:1')).toEqual({ servers: ['tls://h:1'], token: 's3cr3t' });
    expect(splitUrlCredentials('h:4222')).toEqual({ servers: ['h:4222'] });
  });

  it('masks secrets quoted in a message', () => {
    expect(redactSecrets('bad pass hunter2 for hunter2', ['hunter2', undefined])).toBe('bad pass *** for ***');
  });
});
