/**
 * A `.` or `..` path segment, spelled raw or percent-encoded (`%2e`, any case), between
 * delimiters that some server takes for a slash: `/`, and after decoding `%2F`, `\` and
 * `%5C` (Windows, IIS, Tomcat) and `;` (Tomcat and Jetty read `/..;/` as `/../`). The
 * proxy prepends the upstream's base path to the client's path; an upstream (or a
 * framework behind it) that resolves dot segments would let `/../admin` escape that
 * base path.
 */
const DOT_SEGMENT = /(?:^|\/|\\|%2f|%5c)(?:\.|%2e){1,2}(?:$|\/|\\|%2f|%5c|;)/i;

/**
 * Whether the path of a request target (its query aside) has a dot segment, as DOT_SEGMENT reads one.
 * Encoded slashes on their own are left alone: the tracking client's paths carry
 * names (entity, project, run, file names under /files/...) that a client may
 * URL-quote, and nothing in its wire behaviour rules `%2F` out; inside a dot segment
 * (`..%2f..%2f`) it is refused all the same.
 */
export function hasDotSegment(target: string): boolean {
  const q = target.indexOf('?');
  const end = q === -1 ? target.length : q;
  // Most paths (/graphql) have neither a dot nor a percent sign: a scan or two, no regex, no copy.
  const dot = target.indexOf('.');
  const pct = target.indexOf('%');
  if ((dot === -1 || dot >= end) && (pct === -1 || pct >= end)) return false;
  return DOT_SEGMENT.test(q === -1 ? target : target.slice(0, q));
}
