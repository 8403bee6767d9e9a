// The graphql-http conformance audit against a running server.
//
//   node audit.mjs http://127.0.0.1:8000/graphql
//
// AUDIT_AUTHORIZATION, when set, is sent as the Authorization header of every request (the audit's
// own requests carry none, and the API answers unauthenticated requests too, but a key makes the
// audit exercise the same path a client does). Prints one line per audit and exits 1 unless every
// audit is "ok": an error (MUST), a warning (SHOULD) and a notice (MAY) all count as failures, so a
// regression in any of them shows up in CI.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const authorization = process.env.AUDIT_AUTHORIZATION;

async function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers);
  if (authorization && !headers.has('authorization')) {
    headers.set('authorization', authorization);
  }
  return fetch(input, { ...init, headers });
}

const results = await Promise.all(serverAudits({ url, fetchFn }).map((audit) => audit.fn()));

let failed = 0;
for (const result of results) {
  if (result.status === 'ok') {
    console.log(`ok     ${result.id} ${result.name}`);
    continue;
  }
  failed += 1;
  const status = result.response ? ` [HTTP ${result.response.status}]` : '';
  console.log(`${result.status.padEnd(6)} ${result.id} ${result.name}: ${result.reason}${status}`);
}
console.log(`${results.length - failed} of ${results.length} audits passed`);
process.exit(failed === 0 ? 0 : 1);
