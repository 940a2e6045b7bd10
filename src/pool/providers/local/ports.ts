/**
 * Ports for local workers: from the base port upward, skipping ports this
 * pool already gave out and ports something else is listening on. The check
 * binds the port briefly; a race with another program grabbing it before the
 * worker does ends as a failed start, and the restart picks another port.
 */
import { createServer } from 'node:net';

/** How far above the base port to look before giving up. */
const SEARCH_SPAN = 1000;

export class PortAllocator {
  readonly #taken = new Set<number>();
  /** Allocations run one at a time so two launches never pick the same port. */
  #last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly host: string,
    private readonly basePort: number,
  ) {}

  allocate(): Promise<number> {
    const next = this.#last.then(() => this.#find());
    this.#last = next.catch(() => undefined);
    return next;
  }

  release(port: number): void {
    this.#taken.delete(port);
  }

  async #find(): Promise<number> {
    const end = Math.min(65_535, this.basePort + SEARCH_SPAN);
    for (let port = this.basePort; port <= end; port++) {
      if (this.#taken.has(port)) continue;
      if (await isPortFree(this.host, port)) {
        this.#taken.add(port);
        return port;
      }
    }
    throw new Error(`no free port between ${this.basePort} and ${end} on ${this.host}; set pool.local.basePort to a free range`);
  }
}

function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
