import type { ErrorKind } from '../../errors/catalogue.ts';
import { LOGIN_PROBLEMS } from '../../errors/login-problems.ts';
import type { LoginProblemCode } from '../../errors/login-problems.ts';

/**
 * Errors of the OIDC protocol layer. Each carries a stable `code` from LOGIN_PROBLEMS (for logs,
 * tests and the error page), a `message` written for the admin who has to fix
 * the IdP or the connection, and `details` that only go to the log (they may
 * name claim values, never a token).
 */
export class OidcLoginError extends Error {
  readonly code: LoginProblemCode;
  readonly details: Record<string, unknown>;
  /** The code's kind (LOGIN_PROBLEMS): what the edge answers it with. */
  readonly kind: ErrorKind;

  constructor(code: LoginProblemCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'OidcLoginError';
    this.code = code;
    this.details = details;
    this.kind = LOGIN_PROBLEMS[code].kind;
  }
}

/** One thing wrong with a connection's settings or its IdP's discovery document. */
export interface DiscoveryProblem {
  /** The connection field the admin should look at: issuer, client_id, flow, response_mode, allowed_tenant_ids, client_secret. */
  field: string;
  code: string;
  message: string;
}
