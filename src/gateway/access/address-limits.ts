/**
 * Per-address accounting: open connections, callers waiting for a worker,
 * and new conversations per minute (a token bucket that refills steadily, so
 * a burst is allowed and a steady flood is not).
 *
 * Memory is bounded: an address is forgotten once it holds nothing and its
 * bucket has refilled, and at most MAX_ADDRESSES are tracked (the oldest
 * idle one goes first), so spraying addresses cannot grow the maps forever.
 */
import { isIPv6 } from 'node:net';

export interface AddressLimitSettings {
  /** 0 means no limit, for each. */
  maxConnections: number;
  maxQueued: number;
  perMinute: number;
}

interface AddressState {
  connections: number;
  queued: number;
  tokens: number;
  refilledAt: number;
}

const MAX_ADDRESSES = 100_000;
const SWEEP_INTERVAL_MS = 60_000;

/**
 * The key limits are counted under: IPv4 as is (IPv4-mapped IPv6 unwrapped),
 * IPv6 by its /64, which is what one subscriber usually gets.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head, tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export class AddressLimits {
  readonly #states = new Map<string, AddressState>();
  readonly #sweeper: NodeJS.Timeout;
  /** When the map was last swept because it was full: at most once a second, or a spray of new addresses would sweep on every one. */
  #fullSweepAt = -Infinity;

  constructor(
    private readonly settings: AddressLimitSettings,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  /** Counts a new TCP connection; false (and not counted) when the address already holds its share. */
  openConnection(key: string): boolean {
    const state = this.#state(key);
    if (this.settings.maxConnections > 0 && state.connections >= this.settings.maxConnections) return false;
    state.connections++;
    return true;
  }

  closeConnection(key: string): void {
    const state = this.#states.get(key);
    if (state && state.connections > 0) state.connections--;
  }

  /** Takes one new conversation from the address's allowance for this minute. */
  takeConversation(key: string): boolean {
    if (this.settings.perMinute <= 0) return true;
    const state = this.#state(key);
    this.#refill(state);
    if (state.tokens < 1) return false;
    state.tokens--;
    return true;
  }

  /** Seconds until the address may open its next conversation. */
  retryAfterSeconds(key: string): number {
    const state = this.#states.get(key);
    if (!state || this.settings.perMinute <= 0) return 0;
    this.#refill(state);
    return state.tokens >= 1 ? 0 : Math.ceil(((1 - state.tokens) * 60) / this.settings.perMinute);
  }

  enterQueue(key: string): boolean {
    const state = this.#state(key);
    if (this.settings.maxQueued > 0 && state.queued >= this.settings.maxQueued) return false;
    state.queued++;
    return true;
  }

  leaveQueue(key: string): void {
    const state = this.#states.get(key);
    if (state && state.queued > 0) state.queued--;
  }

  /** For /health and tests: what one address holds now. */
  usage(key: string): { connections: number; queued: number } {
    const state = this.#states.get(key);
    return { connections: state?.connections ?? 0, queued: state?.queued ?? 0 };
  }

  get trackedAddresses(): number {
    return this.#states.size;
  }

  /** Forgets addresses that hold nothing and whose allowance is full again. */
  sweep(): void {
    for (const [key, state] of this.#states) if (this.#idle(state)) this.#states.delete(key);
  }

  dispose(): void {
    clearInterval(this.#sweeper);
    this.#states.clear();
  }

  #idle(state: AddressState): boolean {
    if (state.connections > 0 || state.queued > 0) return false;
    this.#refill(state);
    return this.settings.perMinute <= 0 || state.tokens >= this.settings.perMinute;
  }

  #refill(state: AddressState): void {
    const now = this.now();
    const perMinute = this.settings.perMinute;
    state.tokens = Math.min(perMinute, state.tokens + ((now - state.refilledAt) * perMinute) / 60_000);
    state.refilledAt = now;
  }

  #state(key: string): AddressState {
    let state = this.#states.get(key);
    if (state) return state;
    if (this.#states.size >= MAX_ADDRESSES) {
      if (this.now() - this.#fullSweepAt > 1000) {
        this.#fullSweepAt = this.now();
        this.sweep();
      }
      // Still full: drop the oldest address that holds no connection or place in the queue.
      if (this.#states.size >= MAX_ADDRESSES) {
        for (const [oldKey, old] of this.#states) {
          if (old.connections === 0 && old.queued === 0) {
            this.#states.delete(oldKey);
            break;
          }
        }
      }
    }
    state = { connections: 0, queued: 0, tokens: this.settings.perMinute, refilledAt: this.now() };
    this.#states.set(key, state);
    return state;
  }
}
