import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { IncomingMessage } from 'node:http';

const FORWARDED_PEER = Symbol('trackgate.forwardedPeer');

/**
 * The management worker receives every request from the main isolate over a
 * private socket; the main isolate tells it the address of the client's own
 * connection, and the worker records it on the request here.
 */
export function setForwardedPeer(req: IncomingMessage, address: string | undefined): void {
  (req as { [FORWARDED_PEER]?: string | undefined })[FORWARDED_PEER] = address;
}

/** Whether the main isolate relayed this request to the management worker (and so chose its X-Request-Id). */
export function isRelayed(req: IncomingMessage): boolean {
  return FORWARDED_PEER in req;
}

/** The address of the connection the request came in on, also when it was forwarded to the management worker. */
export function peerAddress(req: IncomingMessage): string | undefined {
  const forwarded = (req as { [FORWARDED_PEER]?: string | undefined })[FORWARDED_PEER];
  return forwarded !== undefined ? forwarded || undefined : req.socket.remoteAddress;
}

/** A list of IP addresses and CIDRs, and whether an address (IPv4, IPv6, IPv4-mapped IPv6) is in it. */
export class AddressList {
  private readonly list = new BlockList();

  constructor(entries: string[], what = 'address list') {
    for (const raw of entries) {
      const [addr, bits] = raw.split('/');
      if (!addr) continue;
      const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (!isIPv4(addr) && !isIPv6(addr)) throw new Error(`${what}: "${raw}" is not an IP address or CIDR`);
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  /** Answers by address, remembered: BlockList.check costs an allocation and a regex per call, and this runs on every request. */
  private readonly answers = new Map<string, boolean>();

  has(address: string | undefined): boolean {
    if (!address) return false;
    const known = this.answers.get(address);
    if (known !== undefined) return known;
    const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    const answer = isIPv4(plain) || isIPv6(plain) ? this.list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4') : false;
    if (this.answers.size >= 10_000) this.answers.clear();
    this.answers.set(address, answer);
    return answer;
  }
}

/**
 * Which peers may speak for the client through X-Forwarded-* headers. The configuration refuses a list
 * that trusts every address (0.0.0.0/0, ::/0): X-Forwarded-For is then the client's own writing.
 */
export class TrustedProxies extends AddressList {
  constructor(entries: string[]) {
    super(entries, 'trustedProxies');
  }

  trusts(address: string | undefined): boolean {
    return this.has(address);
  }

  /**
   * The client's address: the peer, or, when the peer is a trusted proxy, X-Forwarded-For read from the
   * right (the entries trusted proxies appended) to the first hop that is not a trusted proxy; entries
   * left of it are whatever the client wrote. Only when every hop is a trusted proxy is the leftmost taken.
   */
  clientIp(req: IncomingMessage): string {
    const peer = peerAddress(req) ?? 'unknown';
    if (!this.trusts(peer)) return peer;
    const xff = req.headers['x-forwarded-for'];
    if (typeof xff !== 'string' || xff === '') return peer;
    const hops = xff.split(',').map((s) => s.trim()).filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (!this.trusts(hop)) return hop;
    }
    return hops[0] ?? peer;
  }
}
