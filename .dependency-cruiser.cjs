/**
 * Import rules (issue 14), checked by scripts/check-imports.mjs in `npm test`
 * (which also checks that the folders of src/ form no cycle). Also usable
 * alone: `npx depcruise src --config .dependency-cruiser.cjs`.
 */

/**
 * Files that may import src/http: the composition roots and the edge, where
 * requests arrive (the HTTP stacks, the CLI, the management worker), the
 * route files and page handlers of each feature, and the hot paths' raw
 * handlers. Everything else under src/ is domain: services, repositories,
 * rules, and knows nothing of HTTP.
 */
const EDGE = [
  '^src/(http|cli|management)/',
  '^src/(app|core|storage)\\.ts$',
  '\\.routes\\.ts$',
  '\\.handlers?\\.ts$',
  // the data plane's raw handlers: /auth/verify, the reverse proxy, and their wiring
  '^src/gateway/(gateway|verify|proxy)\\.ts$',
  // serves /metrics (the registry and its lean handler)
  '^src/metrics/metrics\\.ts$',
  // SSO's wiring of its routers, and its login pages
  '^src/sso/(index|pages)\\.ts$',
  // workload federation's wiring of its token endpoint (the router and the form parser's errors)
  '^src/federation/index\\.ts$',
  // SCIM's wiring, its router (authentication, mounting) and its RFC 7644 error renderer
  '^src/scim/(index|scim\\.router)\\.ts$',
  // the browser session: express-session's middleware and the session cookie's reader (HTTP by nature)
  '^src/sso/session-store\\.ts$',
  // Passport: its strategies read the request and answer with redirect/success/fail, and its session glue
  // (req.login, req.logout) is Express's; the rules they apply stay in the SSO services
  '^src/sso/passport/',
  // the server-rendered pages: all of src/web but its service, repository and tables
  '^src/web/(?!.*\\.(service|repository|tables)\\.ts$)',
];

const DOMAIN_TO_HTTP = 'domain-not-to-http';

/**
 * Domain files that may still see node:http's request type. The Authenticator
 * reads credentials and headers straight from the IncomingMessage (its
 * credential reader caches them on the connection): it serves /auth/verify and
 * the proxy per request, and copying the headers into a domain type first
 * would add an allocation there. gateway/identity.ts types the function the
 * data plane calls it through.
 */
const HTTP_REQUEST_TYPE_ALLOWED = ['^src/auth/(credentials|authenticator)\\.ts$', '^src/gateway/identity\\.ts$'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module cycle: one of the modules in it must not import the next; move what both need to where it belongs.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: DOMAIN_TO_HTTP,
      severity: 'error',
      comment: 'Domain code (services, repositories, rules) must not import src/http: only routes, page handlers and the composition roots may.',
      from: { path: '^src/', pathNot: EDGE },
      to: { path: '^src/http/' },
    },
    {
      name: 'domain-not-to-http-packages',
      severity: 'error',
      comment: 'Domain code must not know Express, its session, cookies or node:http either: parsing and setting cookies, reading and writing requests belong to src/http and the routes.',
      // html.ts's sendHtml writes a page on an Express Response: the HTML system's one way to answer with a page.
      from: { path: '^src/', pathNot: [...EDGE, '^src/html/html\\.ts$'] },
      // resolved paths: the package itself, or its @types for a type-only import
      to: { path: '(^|/)node_modules/(@types/)?(express|express-session|cookie)/' },
    },
    {
      name: 'domain-not-to-node-http',
      severity: 'error',
      comment: 'Domain code must not import node:http (not even its types) but where allowed in HTTP_REQUEST_TYPE_ALLOWED.',
      from: { path: '^src/', pathNot: [...EDGE, ...HTTP_REQUEST_TYPE_ALLOWED] },
      to: { path: '^(node:)?https?$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a folder that needs another's types depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
