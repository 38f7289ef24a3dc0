import { z } from 'zod';

// The API's answers of secret scanning (see orgs.responses.ts for why these live apart from the routes).

/** One reported token's verdict, in the format of GitHub's secret scanning partner program. */
export const reportResultOut = z.object({
  token_hash: z.string().describe('SHA-256 (hex) of the reported token'),
  token_type: z.string().describe('the type the scanner reported it as'),
  label: z.enum(['true_positive', 'false_positive']).describe('true_positive: a credential trackgate issued (revoked now, or already)'),
});
export const reportResultsOut = z.array(reportResultOut);

/** A notice: a credential reported public and revoked on the report, until its owner dismisses it. */
export const leakedCredentialOut = z.object({
  id: z.string(),
  credential_type: z.enum(['api_key', 'access_token', 'scim_token']),
  label: z.string().describe('the key ID (prefix and first characters) of the credential'),
  service_account: z.string().nullable().describe('the service account it belonged to (null for a person\'s)'),
  url: z.string().nullable().describe('where the scanner found it'),
  source: z.string().nullable().describe('what the scanner scanned (content, commit, issue, …)'),
  reported_at: z.string(),
});
export const leakedCredentialsOut = z.object({ leaked_credentials: z.array(leakedCredentialOut) });
