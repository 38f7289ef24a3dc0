import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP relay between the gateway and a dependency (PostgreSQL, Redis, the upstream) that a test can turn
 * bad on demand, to show what clients see when the network, not the dependency, fails:
 * - `pass`: bytes flow both ways;
 * - `blackhole`: a silent partition: every connection, open or new, stays open and nothing arrives either
 *   way (no RST, no FIN), as when a firewall drops packets;
 * - `refuse`: new connections are reset at once and open ones are cut, as when the host is up but the port
 *   is closed;
 * - `delay`: every chunk is held `delayMs` before it is passed on (a slow link or an overloaded server).
 * Listens on 127.0.0.1 only.
 */
export type ProxyMode = 'pass' | 'blackhole' | 'refuse' | 'delay';

export class FaultProxy {
  private mode: ProxyMode = 'pass';
  private delayMs = 0;
  private readonly pairs = new Set<{ client: net.Socket; server: net.Socket }>();
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: { host?: string; port: number }): Promise<FaultProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new FaultProxy(server, (server.address() as AddressInfo).port);
    server.on('connection', (client) => proxy.accept(client, target));
    return proxy;
  }

  private accept(client: net.Socket, target: { host?: string; port: number }): void {
    client.on('error', () => {});
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(target.port, target.host ?? '127.0.0.1');
    server.on('error', () => client.destroy());
    client.on('error', () => server.destroy());
    const pair = { client, server };
    this.pairs.add(pair);
    const relay = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (this.mode === 'blackhole') return; // dropped, as a partition drops packets
        if (this.mode === 'delay' && this.delayMs > 0) {
          from.pause();
          setTimeout(() => {
            if (!to.destroyed) to.write(chunk);
            from.resume();
          }, this.delayMs).unref();
          return;
        }
        if (!to.destroyed) to.write(chunk);
      });
      from.on('end', () => {
        if (this.mode !== 'blackhole') to.end();
      });
    };
    relay(client, server);
    relay(server, client);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('close', drop);
    server.on('close', drop);
  }

  /** Changes the mode for open and new connections. `refuse` also cuts the open ones (RST). */
  set(mode: ProxyMode, delayMs = 0): void {
    this.mode = mode;
    this.delayMs = delayMs;
    if (mode === 'refuse') for (const p of [...this.pairs]) {
      p.client.resetAndDestroy();
      p.server.destroy();
    }
  }

  /** Ends a partition the way it usually ends for the peers: the stalled connections are reset. */
  heal(): void {
    const wasBlackhole = this.mode === 'blackhole';
    this.mode = 'pass';
    if (wasBlackhole) for (const p of [...this.pairs]) {
      p.client.resetAndDestroy();
      p.server.destroy();
    }
  }

  get connections(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.server.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
