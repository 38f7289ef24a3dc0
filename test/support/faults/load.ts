import assert from 'node:assert/strict';

/**
 * A steady stream of verifications against one or more gateway instances while a test breaks
 * something, recording every answer, and the assertions issue 15 asks of each fault: no 500, no 401
 * for a good key, no 200 for a revoked key later than the bound after its revocation, 503s (or any
 * other answer) only within the fault's windows.
 *
 * Each request is either GET /auth/verify or a GET through the proxy (`proxyPath`), with
 * `Authorization: Basic api:<key>`. Keys are chosen at random from the good ones, and from the
 * revoked ones a fifth of the time (when there are any). A few requests in flight at once (the test
 * machines have two cores); the load stops by itself after `durationMs` or at stop().
 */

export interface LoadTarget {
  /** How answers name the instance ("a", "b"...). */
  name: string;
  /** The gateway's base URL. */
  url: string;
}

export type LoadPath = 'verify' | 'proxy';

export interface Sample {
  /** When the request was sent and when its answer (or failure) came, epoch ms. */
  at: number;
  doneAt: number;
  instance: string;
  path: LoadPath;
  /** "good#3" or "revoked#0": never the key itself, so a failure message cannot leak one. */
  key: string;
  /** When the key was revoked (epoch ms); null for a good key; Infinity while its revocation was under way (see revoking()). */
  revokedAt: number | null;
  /** The HTTP status; 0 when no answer came (connection refused or reset, or the client's own timeout). */
  status: number;
  /** error.code of a JSON error answer, or the client-side failure ("timeout", "ECONNREFUSED"...). */
  code: string | null;
  retryAfter: string | null;
}

/** A span of time in which an answer is allowed: [from, to] in epoch ms. */
export interface Window {
  from: number;
  to: number;
}

export interface LoadOptions {
  targets: LoadTarget[];
  good: string[];
  /** Keys already revoked, with when (epoch ms); more can be added with revoke() while the load runs. */
  revoked?: Array<{ key: string; revokedAt: number }>;
  /** Which requests to send, taken in turn (default: both, when proxyPath is set). */
  paths?: LoadPath[];
  /** The path asked for through the proxy (default /api/fault-load). */
  proxyPath?: string;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** The load stops by itself after this (default 60 s). */
  durationMs?: number;
  /** A request with no answer after this is recorded as status 0, code "timeout" (default 15 s). */
  requestTimeoutMs?: number;
  /** Share of requests made with a revoked key, when there are any (default 0.2). */
  revokedShare?: number;
}

export class LoadDriver {
  readonly samples: Sample[] = [];
  private readonly good: string[];
  private readonly revoked: Array<{ key: string; label: string; revokedAt: number }> = [];
  private readonly labels = new Map<string, string>();
  private readonly paths: LoadPath[];
  private readonly proxyPath: string;
  private running = false;
  private stopAt = 0;
  private turn = 0;
  private loops: Promise<void>[] = [];
  private readonly marks = new Map<string, number>();
  private readonly pendingRevocation = new Set<string>();

  constructor(private readonly options: LoadOptions) {
    if (options.targets.length === 0 || options.good.length === 0) throw new Error('the load needs a target and a good key');
    this.good = [...options.good];
    this.good.forEach((k, i) => this.labels.set(k, `good#${i}`));
    this.paths = options.paths ?? ['verify', 'proxy'];
    this.proxyPath = options.proxyPath ?? '/api/fault-load';
    for (const r of options.revoked ?? []) this.revoke(r.key, r.revokedAt);
  }

  /** Starts the load; it runs until stop() or `durationMs`. */
  start(): this {
    if (this.running) return this;
    this.running = true;
    this.stopAt = Date.now() + (this.options.durationMs ?? 60_000);
    const n = this.options.concurrency ?? 8;
    this.loops = Array.from({ length: n }, () => this.loop());
    return this;
  }

  /** From now on `key` counts as revoked at `revokedAt` (default: now); a good key stops being sent as good. */
  revoke(key: string, revokedAt = Date.now()): void {
    const i = this.good.indexOf(key);
    if (i !== -1) this.good.splice(i, 1);
    this.pendingRevocation.delete(key);
    const label = this.labels.get(key) ?? `revoked#${this.revoked.length}`;
    this.labels.set(key, label);
    this.revoked.push({ key, label, revokedAt });
  }

  /**
   * `key` is being revoked (the request is on its way): from now on its answers are asserted neither as a
   * good key's nor as a revoked one's, until revoke() says when the revocation was answered.
   */
  revoking(key: string): void {
    const i = this.good.indexOf(key);
    if (i !== -1) this.good.splice(i, 1);
    this.pendingRevocation.add(key);
  }

  /** Records the time of an event under a name (a fault's start, its end), for windows and messages. */
  mark(name: string, at = Date.now()): number {
    this.marks.set(name, at);
    return at;
  }

  /** The window from mark `from` to mark `to` (or now), widened by `slackMs` after its end. */
  window(from: string, to: string | null, slackMs = 0): Window {
    const a = this.marks.get(from);
    if (a === undefined) throw new Error(`no mark "${from}"`);
    const b = to === null ? Date.now() : this.marks.get(to);
    if (b === undefined) throw new Error(`no mark "${to}"`);
    return { from: a, to: b + slackMs };
  }

  /** Stops sending and waits for the requests in flight. */
  async stop(): Promise<Sample[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.samples;
  }

  /** Resolves once at least `n` more answers have come (or the load has stopped). */
  async waitForSamples(n: number, timeoutMs = 30_000): Promise<void> {
    const target = this.samples.length + n;
    const deadline = Date.now() + timeoutMs;
    while (this.samples.length < target && this.running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  private async loop(): Promise<void> {
    while (this.running && Date.now() < this.stopAt) await this.one();
    this.running = false;
  }

  private pickKey(): { key: string; label: string; revokedAt: number | null } {
    const share = this.options.revokedShare ?? 0.2;
    if (this.pendingRevocation.size > 0 && Math.random() < share) {
      const key = [...this.pendingRevocation][Math.floor(Math.random() * this.pendingRevocation.size)]!;
      // Revocation under way: asserted neither way (see revoking()).
      return { key, label: this.labels.get(key) ?? 'revoking', revokedAt: Number.POSITIVE_INFINITY };
    }
    if (this.revoked.length > 0 && (this.good.length === 0 || Math.random() < share)) {
      const r = this.revoked[Math.floor(Math.random() * this.revoked.length)]!;
      return { key: r.key, label: r.label, revokedAt: r.revokedAt };
    }
    const key = this.good[Math.floor(Math.random() * this.good.length)]!;
    return { key, label: this.labels.get(key)!, revokedAt: null };
  }

  private async one(): Promise<void> {
    const n = this.turn++;
    const target = this.options.targets[n % this.options.targets.length]!;
    const path = this.paths[Math.floor(n / this.options.targets.length) % this.paths.length]!;
    const { key, label, revokedAt } = this.pickKey();
    const at = Date.now();
    const sample: Sample = { at, doneAt: at, instance: target.name, path, key: label, revokedAt, status: 0, code: null, retryAfter: null };
    try {
      const res = await fetch(target.url + (path === 'verify' ? '/auth/verify' : this.proxyPath), {
        headers: { authorization: 'Basic ' + Buffer.from('api:' + key).toString('base64'), accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 15_000),
      });
      const text = await res.text();
      sample.status = res.status;
      sample.retryAfter = res.headers.get('retry-after');
      if (res.status >= 400) sample.code = errorCode(text);
    } catch (err) {
      sample.code = failureCode(err);
    }
    sample.doneAt = Date.now();
    this.samples.push(sample);
  }

  /** Answers matching `filter`. */
  where(filter: (s: Sample) => boolean): Sample[] {
    return this.samples.filter(filter);
  }

  /** Counts of answers by "path status code" (e.g. "proxy 502 upstream_unavailable"), for messages and diagnostics. */
  summary(filter: (s: Sample) => boolean = () => true): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) {
      if (!filter(s)) continue;
      const k = `${s.path} ${s.status}${s.code ? ' ' + s.code : ''}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  /** At least `min` answers were recorded (a load that never ran proves nothing). */
  assertRan(min = 20): void {
    assert.ok(this.samples.length >= min, `only ${this.samples.length} answers recorded: ${JSON.stringify(this.summary())}`);
  }

  /** No answer was a 500. */
  assertNo500(): void {
    const bad = this.where((s) => s.status === 500);
    assert.equal(bad.length, 0, `500 answers: ${describe(bad)}`);
  }

  /** A good key was never refused as bad (401 or 403). */
  assertNo401ForGoodKeys(): void {
    const bad = this.where((s) => s.revokedAt === null && (s.status === 401 || s.status === 403));
    assert.equal(bad.length, 0, `a good key was refused: ${describe(bad)}`);
  }

  /** No revoked key was accepted by a request sent more than `boundMs` after its revocation. */
  assertRevokedRefusedAfter(boundMs: number): void {
    const bad = this.where((s) => s.revokedAt !== null && s.at > s.revokedAt + boundMs && s.status >= 200 && s.status < 300);
    assert.equal(bad.length, 0, `a revoked key was accepted more than ${boundMs} ms after its revocation: ${describe(bad)}`);
  }

  /**
   * Answers matching `filter` came only to requests in flight while one of `windows` was open (sent
   * before its end, answered after its start): a request sent just before a fault meets it too.
   */
  assertOnlyWithin(what: string, filter: (s: Sample) => boolean, windows: Window[]): void {
    const bad = this.where((s) => filter(s) && !windows.some((w) => s.at <= w.to && s.doneAt >= w.from));
    assert.equal(bad.length, 0, `${what} outside its windows ${JSON.stringify(windows)}: ${describe(bad)}`);
  }

  /** 503s only within `windows`. */
  assert503OnlyWithin(windows: Window[]): void {
    this.assertOnlyWithin('503', (s) => s.status === 503, windows);
  }

  /** Every request got an HTTP answer, none took longer than `maxMs` (no hang, no cut connection). */
  assertAllAnsweredWithin(maxMs: number, filter: (s: Sample) => boolean = () => true): void {
    const bad = this.where((s) => filter(s) && (s.status === 0 || s.doneAt - s.at > maxMs));
    assert.equal(bad.length, 0, `requests without an answer within ${maxMs} ms: ${describe(bad)}`);
  }

  /** The common assertions of every fault: no 500, no good key refused, no revoked key past the bound. */
  assertInvariants(revocationBoundMs: number): void {
    this.assertRan();
    this.assertNo500();
    this.assertNo401ForGoodKeys();
    this.assertRevokedRefusedAfter(revocationBoundMs);
  }
}

function errorCode(text: string): string | null {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown } };
    return typeof body.error?.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}

function failureCode(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
  return e.cause?.code ?? e.name ?? 'failed';
}

/** At most ten answers, with times relative to the first one shown. */
function describe(samples: Sample[]): string {
  if (samples.length === 0) return 'none';
  const t0 = samples[0]!.at;
  const shown = samples.slice(0, 10).map((s) => ({ ...s, at: s.at - t0, took: s.doneAt - s.at, revokedAt: s.revokedAt === null ? null : s.revokedAt - t0, doneAt: undefined }));
  return `${samples.length} of them (first at ${new Date(t0).toISOString()}), e.g. ${JSON.stringify(shown)}`;
}
