import { connectKvPageClient, type KvPageClient } from '@switchyard/rpc';

/**
 * One KvPageClient per peer address, opened on first use and kept (a channel per peer, as for expert
 * workers). A client whose connect failed is not kept: the next use tries again.
 */
export class KvClients {
  readonly #deadlineMs: number;
  readonly #clients = new Map<string, Promise<KvPageClient>>();

  constructor(deadlineMs: number) {
    this.#deadlineMs = deadlineMs;
  }

  get(address: string): Promise<KvPageClient> {
    let client = this.#clients.get(address);
    if (!client) {
      client = connectKvPageClient(address, { deadlineMs: this.#deadlineMs, connectDeadlineMs: 2_000 });
      this.#clients.set(address, client);
      client.catch(() => this.#clients.delete(address));
    }
    return client;
  }

  /** Drops a peer's client (it failed): the next use reconnects. */
  forget(address: string): void {
    const client = this.#clients.get(address);
    this.#clients.delete(address);
    void client?.then((c) => c.close()).catch(() => undefined);
  }

  close(): void {
    for (const address of [...this.#clients.keys()]) this.forget(address);
  }
}
