/**
 * The NATS account layout of a Switchyard cluster: which subjects each kind of process may publish and
 * subscribe to, so that a leaked credential is worth only what its process needs. Every process gets
 * its own user (an NKey, a .creds file, or a user and password) in one account, named as the process
 * names itself (`--name`, `--worker-id`): the permissions below are written for that name.
 *
 * - a **frontend** (a gateway with `--no-engine`) publishes requests, cancels and resends only under
 *   its own name, reads only its own requests' token subjects and engines' load reports, and reads the
 *   KV event stream to route by prefix; it cannot consume requests, publish token events, or stop
 *   another frontend's requests;
 * - an **engine** (a gateway that serves the queue: a frontend too, for its own HTTP clients) also
 *   consumes the request stream, publishes token events and its KV events, and owns the streams;
 * - a **worker** only registers itself in the worker registry bucket;
 * - a **kv-store** (page store) publishes its KV events and load reports.
 *
 * `natsServerAuthorization` renders users with these permissions as a nats-server `authorization`
 * block (docs/architecture.md, "NATS permissions"; `switchyard nats-config` prints one).
 */
import { createUser } from '@nats-io/nkeys';
import { escapeToken, type ClusterNames } from './subjects.ts';

/** A fresh user NKey: the public key (`U…`) goes into the server's config, the seed (`SU…`) to the process (NATS_NKEY). */
export function createNatsUserKey(): { readonly publicKey: string; readonly seed: string } {
  const pair = createUser();
  return { publicKey: pair.getPublicKey(), seed: new TextDecoder().decode(pair.getSeed()) };
}

export const NATS_ROLES = ['frontend', 'engine', 'worker', 'kv-store'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

/** The name that stands for every process of a role (see natsPermissions). */
export const ANY_NAME = '*';

export interface NatsPermissions {
  readonly publish: { readonly allow: readonly string[] };
  readonly subscribe: { readonly allow: readonly string[] };
}

/**
 * The subjects a process of `role` named `name` may publish and subscribe to in `names`'s namespace;
 * `name` `*` (ANY_NAME) for a user shared by every process of the role.
 */
export function natsPermissions(names: ClusterNames, role: NatsRole, name: string): NatsPermissions {
  const r = names.root;
  // `*`: one user for every process of the role (their names are not known in advance, as a
  // Deployment's pods): roles stay apart, processes of one role do not.
  const me = name === ANY_NAME ? '*' : escapeToken(name);
  const inbox = `_INBOX.${names.namespace}.${me}.>`;
  const api = '$JS.API';
  const requests = names.requestStream;
  const kvEvents = names.kvEventStream;
  /** Reading a stream through an ephemeral (ordered) consumer, as a frontend follows KV events. */
  const follow = (stream: string) => [
    `${api}.STREAM.INFO.${stream}`,
    `${api}.CONSUMER.CREATE.${stream}.>`,
    `${api}.CONSUMER.INFO.${stream}.>`,
    `${api}.CONSUMER.DELETE.${stream}.>`,
    `${api}.CONSUMER.MSG.NEXT.${stream}.>`,
  ];
  /** Creating, updating and reading a stream and its consumers. */
  const own = (stream: string) => [
    `${api}.STREAM.CREATE.${stream}`,
    `${api}.STREAM.UPDATE.${stream}`,
    `${api}.STREAM.INFO.${stream}`,
    `${api}.CONSUMER.CREATE.${stream}.>`,
    `${api}.CONSUMER.DURABLE.CREATE.${stream}.>`,
    `${api}.CONSUMER.INFO.${stream}.>`,
    `${api}.CONSUMER.DELETE.${stream}.>`,
    `${api}.CONSUMER.MSG.NEXT.${stream}.>`,
  ];
  /** A KV bucket read and written (its stream is KV_<bucket>; gets are direct). */
  const bucket = (name: string) => [
    `$KV.${name}.>`,
    ...own(`KV_${name}`),
    `${api}.DIRECT.GET.KV_${name}.>`,
    `${api}.STREAM.MSG.GET.KV_${name}`,
  ];
  const frontend = {
    publish: [
      `${api}.INFO`,
      `${r}.requests.>`,
      `${r}.cancel.${me}.*`,
      `${r}.resend.${me}.*`,
      `${r}.frontends.${me}`,
      `${r}.kv.snapshot.*`,
      `${api}.STREAM.INFO.${requests}`,
      `${api}.CONSUMER.INFO.${requests}.>`,
      // A routed request rerouted to the shared subject is first taken off its engine's subject.
      `${api}.STREAM.MSG.DELETE.${requests}`,
      ...follow(kvEvents),
    ],
    subscribe: [inbox, `${r}.tokens.${me}.*`, `${r}.engines.load.*`],
  };
  switch (role) {
    case 'frontend':
      return { publish: { allow: frontend.publish }, subscribe: { allow: frontend.subscribe } };
    case 'engine':
      return {
        publish: {
          allow: [
            ...frontend.publish,
            `${r}.tokens.>`,
            `${r}.engines.load.${me}`,
            `${r}.engines.expert-load.${me}`,
            `${r}.kv.events.${me}`,
            `$JS.ACK.${requests}.>`,
            ...own(requests),
            ...own(kvEvents),
            ...bucket(names.workersBucket),
            ...bucket(names.placementBucket),
          ],
        },
        subscribe: {
          allow: [
            ...frontend.subscribe,
            `${r}.cancel.*.*`,
            `${r}.resend.*.*`,
            `${r}.frontends.*`,
            `${r}.kv.snapshot.${me}`,
            `${r}.engines.expert-load.*`,
          ],
        },
      };
    case 'worker':
      return {
        publish: { allow: [`${api}.INFO`, ...bucket(names.workersBucket)] },
        subscribe: { allow: [inbox] },
      };
    case 'kv-store':
      return {
        publish: {
          allow: [`${api}.INFO`, `${r}.engines.load.${me}`, `${r}.kv.events.${me}`, ...own(kvEvents)],
        },
        subscribe: { allow: [inbox, `${r}.kv.snapshot.${me}`] },
      };
  }
}

/** One NATS user of the layout: its credential (an NKey public key, or a user and password) and what it may do. */
export interface NatsUser {
  readonly role: NatsRole;
  /** The process's name (`--name` of a gateway, the worker's `worker-<id>`, the store's `--name`). */
  readonly name: string;
  /** The user's public NKey (`U…`); or `user` and `password`. */
  readonly nkey?: string;
  readonly user?: string;
  readonly password?: string;
}

/** A nats-server `authorization { users = [...] }` block for `users` in `names`'s namespace. */
export function natsServerAuthorization(names: ClusterNames, users: readonly NatsUser[]): string {
  const q = (s: string) => JSON.stringify(s);
  const list = (items: readonly string[]) => `[${items.map(q).join(', ')}]`;
  const lines = users.map((u) => {
    const p = natsPermissions(names, u.role, u.name);
    let credential: string;
    if (u.nkey !== undefined) credential = `nkey: ${q(u.nkey)}`;
    else if (u.user !== undefined && u.password !== undefined)
      credential = `user: ${q(u.user)}, password: ${q(u.password)}`;
    else throw new Error(`NATS user ${u.role} ${u.name} needs an nkey, or a user and a password`);
    return (
      `    # ${u.role} ${u.name}\n` +
      `    { ${credential}, permissions: {\n` +
      `        publish: { allow: ${list(p.publish.allow)} }\n` +
      `        subscribe: { allow: ${list(p.subscribe.allow)} } } }`
    );
  });
  return `authorization {\n  users = [\n${lines.join('\n')}\n  ]\n}\n`;
}
