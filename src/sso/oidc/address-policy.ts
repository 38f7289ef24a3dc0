import ipaddr from 'ipaddr.js';

/**
 * Which network addresses trackgate may connect to when it fetches from an
 * identity provider (discovery, JWKS, token endpoint).
 *
 * An organization admin chooses the issuer URL, and the IdP's discovery
 * document chooses the other URLs: without this policy, saving a connection
 * would make the gateway fetch from its own loopback interface, the private
 * network around it or a cloud metadata service (169.254.169.254), and the
 * error it reported would tell a port scanner which ports are open.
 *
 * Only public unicast addresses pass: IPv4 that ipaddr.js classifies as plain
 * `unicast`, and IPv6 global unicast (2000::/3) that it classifies so too.
 * Everything else (loopback, RFC 1918 private, link-local, CGNAT, multicast,
 * broadcast, unspecified, documentation and reserved ranges, unique-local,
 * IPv4-compatible ::a.b.c.d, 6to4 and Teredo tunnels) is refused.
 * IPv4-mapped IPv6 (::ffff:127.0.0.1) and NAT64 (64:ff9b::/96, what DNS64
 * hands an IPv6-only host for an IPv4 site) are judged by the IPv4 address
 * they carry.
 *
 * An operator whose IdP lives inside the network (Keycloak on premises, say)
 * lists its networks in TRACKGATE_SSO_ALLOWED_NETWORKS: an operator's
 * decision, never an organization admin's.
 */

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3') as [ipaddr.IPv6, number];
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96') as [ipaddr.IPv6, number];

export type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** CIDRs ("10.20.0.0/16", "fd00:1::/64") as networks; throws on one that is not. */
export function parseNetworks(cidrs: readonly string[]): Network[] {
  return cidrs.map((c) => ipaddr.parseCIDR(c.trim()));
}

/**
 * Why trackgate may not connect to `address` (an IPv4 or IPv6 literal), or
 * null when it may: a public address, or one in the operator's `allowed` networks.
 */
export function blockedAddressReason(address: string, allowed: readonly Network[] = []): string | null {
  const literal = address.replace(/^\[|\]$/g, '');
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // process() turns ::ffff:a.b.c.d into the IPv4 address a.b.c.d.
    ip = ipaddr.process(literal);
  } catch {
    return 'not an IP address';
  }
  if (allowed.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return null;
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    if (v6.match(NAT64_WELL_KNOWN)) {
      const b = v6.toByteArray();
      const embedded = new ipaddr.IPv4(b.slice(12));
      const inner = blockedAddressReason(embedded.toString());
      return inner ? `NAT64 of ${embedded.toString()}: ${inner}` : null;
    }
    if (!v6.match(GLOBAL_UNICAST_V6)) return `IPv6 ${v6.range() === 'unicast' ? 'outside global unicast (2000::/3)' : v6.range()} address`;
  }
  const range = ip.range();
  return range === 'unicast' ? null : `${range} address`;
}
