import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** A loopback port that was free a moment ago (for servers that must know their URL before they start). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A raw exchange over TCP, for requests fetch will not send (duplicate
 * headers, smuggling attempts, garbage): writes `text`, returns everything
 * the server answered until it closed the connection ('' if it reset it).
 */
export function rawRequest(url: string, text: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => s.end(text));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    s.on('close', () => resolve(out));
    s.on('error', () => {});
  });
}

/** A Content-Security-Policy header as directive → sources, for comparing a whole policy (not one directive of it). */
export function cspDirectives(header: string | null): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of (header ?? '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out[name.toLowerCase()] = sources;
  }
  return out;
}
