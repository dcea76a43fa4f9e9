import { describe, expect, it } from 'vitest';
import { ClusterNames, escapeToken, freshNamespace, unescapeToken, validateNamespace } from '../src/subjects.ts';
import { redactSecrets, redactUrl, splitUrlCredentials } from '../src/redact-url.ts';
import { InvalidSubjectTokenError } from '../src/errors.ts';

const names = new ClusterNames();

describe('subjects', () => {
  it('escapes a model name with dots, slashes and wildcards into one safe token', () => {
    expect(names.requestSubject('org/model.v2')).toBe('switchyard.v1.default.requests.org_2Fmodel_2Ev2');
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

  it('names token, cancel and resend subjects by frontend and request id and reads both back', () => {
    expect(names.tokenSubject('fe-0', 'cmpl-1')).toBe('switchyard.v1.default.tokens.fe-0.cmpl-1');
    expect(names.tokenSubject(undefined, 'cmpl-1')).toBe('switchyard.v1.default.tokens._.cmpl-1');
    expect(names.frontendTokenSubjects('fe-0')).toBe('switchyard.v1.default.tokens.fe-0.*');
    expect(names.controlOf(names.cancelSubject('gw.1', 'r.1'))).toEqual({ frontendId: 'gw.1', requestId: 'r.1' });
    expect(names.controlOf(names.resendSubject(undefined, 'r.1'))).toEqual({ frontendId: undefined, requestId: 'r.1' });
    expect(names.controlOf('switchyard.v1.default.tokens.f.r1')).toBeUndefined();
    expect(names.controlOf('switchyard.v1.default.cancel.r1')).toBeUndefined();
    expect(names.controlOf('switchyard.v1.default.cancel.f.r1.x')).toBeUndefined();
    // No frontend name escapes to `_`, the token of requests queued by no named frontend.
    expect(names.tokenSubject('_', 'r')).not.toBe(names.tokenSubject(undefined, 'r'));
    expect(names.frontendIdOf(names.frontendSubject('gw.1'))).toBe('gw.1');
  });

  it('puts the namespace in every subject, stream and bucket, and no two namespaces share one', () => {
    const a = new ClusterNames('team-a');
    const b = new ClusterNames('team-b');
    expect(a.requestSubject('tiny')).toBe('switchyard.v1.team-a.requests.tiny');
    expect(a.requestSubjects).toBe('switchyard.v1.team-a.requests.>');
    expect(a.requestStream).toBe('SWITCHYARD_REQUESTS_team-a');
    expect(a.kvEventStream).toBe('SWITCHYARD_KV_EVENTS_team-a');
    expect(a.workersBucket).toBe('switchyard_workers_team-a');
    expect(a.placementBucket).toBe('switchyard_placement_team-a');
    const all = (n: ClusterNames) => [
      n.requestSubject('tiny'),
      n.routedRequestSubject('tiny', 'e'),
      n.tokenSubject('f', 'r'),
      n.cancelSubject('f', 'r'),
      n.resendSubject('f', 'r'),
      n.engineLoadSubject('e'),
      n.kvEventSubject('e'),
      n.kvSnapshotSubject('e'),
      n.frontendSubject('f'),
      n.requestStream,
      n.kvEventStream,
      n.workersBucket,
      n.placementBucket,
    ];
    const fromA = new Set(all(a));
    for (const name of all(b)) expect(fromA.has(name)).toBe(false);
    // A control subject of another namespace names no request here.
    expect(a.controlOf(b.cancelSubject('f', 'r'))).toBeUndefined();
    expect(a.frontendIdOf(b.frontendSubject('f'))).toBeUndefined();
  });

  it('refuses a namespace that is not a safe stream and subject token; fresh ones are valid and differ', () => {
    for (const bad of ['', 'A', 'a.b', 'a b', 'a*', 'a>', '-a', 'a_b', 'x'.repeat(33)])
      expect(() => validateNamespace(bad), bad).toThrow(InvalidSubjectTokenError);
    expect(validateNamespace('run-0f3a')).toBe('run-0f3a');
    const fresh = new Set(Array.from({ length: 20 }, () => freshNamespace()));
    expect(fresh.size).toBe(20);
    for (const ns of fresh) expect(validateNamespace(ns)).toBe(ns);
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
