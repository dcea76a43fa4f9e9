/**
 * A worker thread that answers jobs, started on the first job and stopped with `close()`. Each job is
 * posted as `{ id, ...job }` and settled by the reply that carries its id (messages without an id, such as
 * a "ready" notice, are ignored); what a reply means is the caller's to read. If the thread dies, every
 * job it held fails with that error and the next job starts a new thread. An idle thread does not keep
 * the process alive.
 */
import { Worker, type Transferable } from 'node:worker_threads';

export class JobThread<Reply extends { readonly id: number }> {
  readonly #script: URL;
  readonly #workerData: unknown;
  readonly #name: string;
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();

  /** `name` says which thread in errors ("the tokenizer thread exited with code 1"). */
  constructor(script: URL, options: { readonly name: string; readonly workerData?: unknown }) {
    this.#script = script;
    this.#name = options.name;
    this.#workerData = options.workerData;
  }

  request(job: object, transfer: readonly Transferable[] = []): Promise<Reply> {
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ ...job, id }, [...transfer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(this.#script, { workerData: this.#workerData });
    worker.unref();
    worker.on('message', (reply: Partial<Reply>) => {
      if (typeof reply.id !== 'number') return;
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      pending?.resolve(reply as Reply);
    });
    const fail = (error: Error) => {
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
      if (this.#worker === worker) this.#worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`${this.#name} exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }
}
