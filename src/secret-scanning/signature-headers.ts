/**
 * Where secret scanners report leaked credentials, and the headers of their signature (GitHub's secret
 * scanning partner program): known to the main isolate's body admission (src/management/body-intake.ts)
 * as well as to the report route, so that an unsigned report is refused before its body is read.
 */
export const SECRET_SCANNING_PREFIX = '/gateway/v1/secret-scanning/';
/** The report endpoint itself (under the management API's mount). */
export const SECRET_SCANNING_REPORTS_PATH = '/secret-scanning/reports';

/** Lower-case header names (as rawHeader takes them). */
export const SIGNATURE_HEADERS = {
  keyId: 'github-public-key-identifier',
  signature: 'github-public-key-signature',
} as const;
