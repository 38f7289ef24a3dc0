/**
 * The error catalogue (src/errors) is the one home of error codes (issue 14): every code in it has a
 * meaning and an HTTP status at the edge, every code in it is used, and no source outside src/errors
 * and src/http makes an error the old way (an HTTP status at the throw site, HTTP headers, or an
 * import of the HTTP layer's errors).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { AppError, errors } from '../src/errors/app-error.ts';
import { ERROR_CATALOGUE } from '../src/errors/catalogue.ts';
import type { ErrorCode } from '../src/errors/catalogue.ts';
import { LOGIN_PROBLEMS } from '../src/errors/login-problems.ts';
import { httpHeadersOf, httpStatusOf, WWW_AUTHENTICATE } from '../src/http/errors.ts';

const SRC = join(import.meta.dirname, '..', 'src');
/** Folders and files of the domain: services, repositories, authentication (not routes or pages). */
const DOMAIN = /^(auth|keys|users|orgs|teams|service-accounts|assertions|audit|db|crypto|sso\/(?!.*routes)|web\/.*\.service)|\.service\.ts$/;
const CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}
const FILES = sources(SRC).map((path) => ({ path: relative(SRC, path).split('\\').join('/'), text: readFileSync(path, 'utf8') }));

describe('error catalogue', () => {
  test('every code has a meaning and maps to an HTTP status', () => {
    assert.ok(CODES.length > 50, `only ${CODES.length} codes: is the catalogue complete?`);
    for (const code of CODES) {
      assert.ok(ERROR_CATALOGUE[code].meaning.length > 10, `${code}: no meaning`);
      const status = httpStatusOf(new AppError(code, 'x'));
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: status ${status}`);
    }
  });

  test('the statuses, headers and stack traces of the common errors are what they were', () => {
    const cases: [AppError, number][] = [
      [errors.badRequest('x'), 400],
      [errors.validation('x'), 400],
      [errors.unauthenticated(), 401],
      [errors.forbidden('x', 'sso_required'), 403],
      [errors.notFound('x'), 404],
      [errors.conflict('x', 'key_expired'), 409],
      [errors.unauthenticated('x', 'key_expired'), 401],
      [new AppError('user_deactivated', 'x', { kind: 'forbidden' }), 403],
      [new AppError('link_used', 'x'), 410],
      [new AppError('name_reserved', 'x'), 422],
      [errors.tooManyRequests('x', 0.2), 429],
      [errors.internal(), 500],
      [new AppError('upstream_unavailable', 'x'), 502],
      [new AppError('management_busy', 'x', { retryAfterSeconds: 1 }), 503],
      [new AppError('upstream_timeout', 'x'), 504],
    ];
    for (const [err, status] of cases) assert.equal(httpStatusOf(err), status, err.code);
    assert.deepEqual(httpHeadersOf(errors.unauthenticated()), { 'WWW-Authenticate': WWW_AUTHENTICATE });
    assert.deepEqual(httpHeadersOf(errors.tooManyRequests('x', 0.2)), { 'Retry-After': '1' });
    assert.deepEqual(httpHeadersOf(errors.tooManyRequests('x', 61.5)), { 'Retry-After': '62' });
    assert.equal(httpHeadersOf(errors.forbidden('x')), undefined);
    // A client's error skips the stack trace (it dominated the profile under a flood of bad keys); trackgate's own keeps it.
    assert.equal(errors.unauthenticated().stack?.includes('\n    at '), false);
    assert.equal(errors.internal().stack?.includes('\n    at '), true);
  });

  test('every code in the catalogue is used somewhere in src/', () => {
    const text = FILES.filter((f) => f.path !== 'errors/catalogue.ts').map((f) => f.text).join('\n');
    for (const code of CODES) assert.ok(text.includes(`'${code}'`), `${code} is in the catalogue but nothing raises it: remove it`);
  });

  test('every sign-in problem code has a meaning and is raised somewhere in src/', () => {
    const text = FILES.filter((f) => f.path !== 'errors/login-problems.ts').map((f) => f.text).join('\n');
    for (const [code, { meaning }] of Object.entries(LOGIN_PROBLEMS)) {
      assert.ok(meaning.length > 10, `${code}: no meaning`);
      // jwks_<problem> and token_endpoint_<problem> are built from IdpFetchError's problem.
      const built = /^(jwks|token_endpoint)_/.exec(code);
      assert.ok(text.includes(`'${code}'`) || (built !== null && text.includes(`\`${built[1]}_\${err.problem}\``)), `${code} is in LOGIN_PROBLEMS but nothing raises it: remove it`);
    }
  });

  test('no source outside src/errors and src/http makes an error with an HTTP status, HTTP headers or the HTTP layer\'s errors', () => {
    const found: string[] = [];
    for (const { path, text } of FILES) {
      if (path.startsWith('errors/') || path.startsWith('http/')) continue;
      text.split('\n').forEach((line, i) => {
        const at = `src/${path}:${i + 1}: ${line.trim().slice(0, 120)}`;
        // The code comes first and from the catalogue; the status is the edge's (src/http/errors.ts).
        if (/new AppError\(\s*\d/.test(line)) found.push(`${at}  (an HTTP status at the throw site)`);
        // Retry-After and WWW-Authenticate are the edge's rendering of retryAfterSeconds and challenge.
        if (/AppError\(.*headers\s*:/.test(line)) found.push(`${at}  (HTTP headers on an error)`);
        if (/import \{[^}]*\b(AppError|errors)\b[^}]*\} from '(\.\.\/)+http\/errors\.ts'/.test(line)) found.push(`${at}  (import the catalogue from src/errors)`);
        // The domain knows nothing of HTTP: only the surfaces (pages, gateway, ...) use the edge's mapping.
        if (DOMAIN.test(path) && /from '(\.\.\/)+http\/errors\.ts'/.test(line)) found.push(`${at}  (the domain imports errors from src/errors)`);
        // A code is compared as a catalogue code, not as the status it happens to have today.
        if (/\b(err|e|error)\.status\s*(===|!==|<|>|>=|<=)\s*\d/.test(line)) found.push(`${at}  (compare the error's kind or code, not its status)`);
      });
    }
    assert.deepEqual(found, [], `errors made outside the catalogue:\n${found.join('\n')}`);
  });
});
