import type { Config } from '../config/config.ts';

/** What the main isolate hands the management worker at start. */
export interface WorkerInit {
  config: Config;
  /** The private socket the worker's own HTTP server listens on (in a folder only this user can enter). */
  socketPath: string;
  /** The BroadcastChannel name for cache invalidations between the two isolates; also the instance's origin on Redis. */
  invalidationChannel: string;
}

/**
 * Main → worker. A forwarded request is one `request` with its whole body (the main thread waits
 * for it: a slow sender must not hold a connection of the worker); `abort` when the client went away.
 */
export type ToWorker =
  | { type: 'metrics'; id: number }
  | { type: 'close' }
  | { type: 'request'; id: number; method: string; path: string; headers: string[]; body: Uint8Array | null }
  | { type: 'abort'; id: number };

/** Worker → main. The answer to a forwarded request is `head` (its headers, this hop's already removed), `data` chunks and `end`, or `error`. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'metrics'; id: number; text: string }
  | { type: 'head'; id: number; status: number; statusText: string; headers: string[] }
  | { type: 'data'; id: number; chunk: Uint8Array }
  | { type: 'end'; id: number }
  /**
   * `timeout`: the worker's own server did not answer in time; `busy`: its socket refused new
   * connections (EAGAIN, a full backlog) even after retries; `failed`: anything else.
   */
  | { type: 'error'; id: number; message: string; reason: 'timeout' | 'busy' | 'failed' };

/**
 * The request header that carries the address of the client's connection from
 * the main isolate to the worker. The main isolate removes any copy a client
 * sent and sets its own; the worker removes it before the request goes on.
 */
export const PEER_HEADER = 'x-trackgate-peer';

/**
 * A chunk as a message can carry it: a copy of just its bytes. A Buffer is
 * often a view into a larger pooled buffer, which a message would copy whole;
 * the copy's own buffer is transferred instead.
 */
export function chunkMessage(chunk: Uint8Array): { chunk: Uint8Array; transfer: ArrayBuffer[] } {
  const copy = new Uint8Array(chunk);
  return { chunk: copy, transfer: [copy.buffer] };
}
