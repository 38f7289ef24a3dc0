import type { Config } from '../config/config.ts';

/** What the main isolate hands the management worker at start. */
export interface WorkerInit {
  config: Config;
  /** The private socket the worker serves on (in a folder only this user can enter). */
  socketPath: string;
  /** The BroadcastChannel name for cache invalidations between the two isolates. */
  invalidationChannel: string;
}

/** Main → worker. */
export type ToWorker = { type: 'metrics'; id: number } | { type: 'close' };

/** Worker → main. */
export type FromWorker = { type: 'ready' } | { type: 'metrics'; id: number; text: string };

/**
 * The request header that carries the address of the client's connection from
 * the main isolate to the worker. The main isolate removes any copy a client
 * sent and sets its own; the worker removes it before the request goes on.
 */
export const PEER_HEADER = 'x-trackgate-peer';
