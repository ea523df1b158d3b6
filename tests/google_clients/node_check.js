#!/usr/bin/env node
// Google's own Node library (google-auth-library) against `oauthtest --mode serve`.
//
// Usage: node tests/google_clients/node_check.js BASE_URL
//
// Run by tests/cli/google_clients.rs, over http:// and over https:// (`--tls`, the CA trusted
// through NODE_EXTRA_CA_CERTS, nothing insecure). Each check uses the library as an application
// does against Google, with only its endpoints pointed at the mock. Prints one PASS line per
// check; a failure prints the error and exits non-zero.
'use strict';

const assert = require('node:assert/strict');
const { adminOf, clientOf } = require('./serve_api');

const BASE = process.argv[2].replace(/\/$/, '');
const CLIENT_ID = 'mock-client-id.apps.googleusercontent.com';
const CLIENT_SECRET = 'mock-client-secret';
const GMAIL = 'https://www.googleapis.com/auth/gmail.readonly';
const EMAIL_SCOPE = 'https://www.googleapis.com/auth/userinfo.email';
const REDIRECT = 'http://127.0.0.1:8765/callback';

const admin = adminOf(BASE);

function client() {
  return clientOf(BASE, { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT });
}

async function check_id_token_verifies_with_verifyIdToken() {
  await admin('POST', 'reset');
  const minted = await admin('POST', 'refresh-tokens', { scopes: ['openid', EMAIL_SCOPE] });
  const oauth = client();
  oauth.setCredentials({ refresh_token: minted.refresh_token });
  const { credentials } = await oauth.refreshAccessToken();
  assert.ok(credentials.id_token, 'an id_token with openid');
  const ticket = await oauth.verifyIdToken({ idToken: credentials.id_token, audience: CLIENT_ID });
  const payload = ticket.getPayload();
  assert.equal(payload.iss, 'https://accounts.google.com');
  assert.equal(payload.email, 'test-user@example.com');
  const [header, , signature] = credentials.id_token.split('.');
  const forgedClaims = Buffer.from(JSON.stringify({ ...payload, email: 'mallory@example.com' })).toString('base64url');
  await assert.rejects(
    client().verifyIdToken({ idToken: `${header}.${forgedClaims}.${signature}`, audience: CLIENT_ID }),
    /Invalid token signature/,
  );
  await assert.rejects(
    client().verifyIdToken({ idToken: credentials.id_token, audience: 'another-client' }),
    /Wrong recipient/,
  );
}

async function check_sign_in_with_pkce_through_getToken() {
  await admin('POST', 'reset');
  const oauth = client();
  const { codeVerifier, codeChallenge } = await oauth.generateCodeVerifierAsync();
  const url = oauth.generateAuthUrl({
    access_type: 'offline',
    prompt: 'consent',
    scope: ['openid', EMAIL_SCOPE, GMAIL],
    state: 'node-state',
    code_challenge_method: 'S256',
    code_challenge: codeChallenge,
  });
  // The browser's part: the mock's consent step approves at once and redirects.
  const answer = await fetch(url, { redirect: 'manual' });
  assert.equal(answer.status, 302);
  const callback = new URL(answer.headers.get('location'));
  assert.equal(callback.searchParams.get('state'), 'node-state');
  const code = callback.searchParams.get('code');
  const { tokens } = await oauth.getToken({ code, codeVerifier });
  assert.match(tokens.access_token, /^ya29\./);
  assert.match(tokens.refresh_token, /^1\/\//);
  await oauth.verifyIdToken({ idToken: tokens.id_token, audience: CLIENT_ID });
  await assert.rejects(oauth.getToken({ code, codeVerifier }), /invalid_grant/);
  const fresh = client();
  const second = fresh.generateAuthUrl({ scope: ['openid'], code_challenge_method: 'S256', code_challenge: codeChallenge });
  const again = new URL((await fetch(second, { redirect: 'manual' })).headers.get('location'));
  await assert.rejects(
    fresh.getToken({ code: again.searchParams.get('code'), codeVerifier: 'not-the-verifier' }),
    /invalid_grant/,
  );
}

async function check_getTokenInfo_reads_the_bearer_token() {
  await admin('POST', 'reset');
  const minted = await admin('POST', 'refresh-tokens', { scopes: [GMAIL, EMAIL_SCOPE] });
  const oauth = client();
  oauth.setCredentials({ refresh_token: minted.refresh_token });
  const { token } = await oauth.getAccessToken();
  const info = await oauth.getTokenInfo(token);
  assert.deepEqual(info.scopes.sort(), [GMAIL, EMAIL_SCOPE].sort());
  assert.equal(info.email, 'test-user@example.com');
  assert.ok(info.expiry_date > Date.now());
  await assert.rejects(oauth.getTokenInfo('ya29.unknown'), /invalid|400/i);
}

const CHECKS = [
  check_id_token_verifies_with_verifyIdToken,
  check_sign_in_with_pkce_through_getToken,
  check_getTokenInfo_reads_the_bearer_token,
];

(async () => {
  for (const check of CHECKS) {
    await check();
    console.log(`PASS ${check.name}`);
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
