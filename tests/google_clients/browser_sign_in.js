#!/usr/bin/env node
// A real browser signs in to a small example web app against `oauthtest --mode serve`.
//
// Usage: node tests/google_clients/browser_sign_in.js BASE_URL
//
// Run by tests/cli/browser.rs. The web app (below, on 127.0.0.1 and a port of its own) is what
// a staging frontend does with Google's Node library: `/login` sends the browser to the sign-in
// page with PKCE S256 and a state, `/callback` checks the state, exchanges the code with
// `getToken`, verifies the id_token with `verifyIdToken` and stores the refresh token. Headless
// Chromium (Debian's /usr/bin/chromium, or $OAUTHTEST_CHROMIUM), driven by playwright-core,
// follows the redirects as a user's browser does. Prints one PASS line per check; a failure
// prints the error and exits non-zero. Tokens are never printed.
'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const crypto = require('node:crypto');
const { adminOf, clientOf } = require('./serve_api');
const { chromium } = require('playwright-core');

const BASE = process.argv[2].replace(/\/$/, '');
const CHROMIUM = process.env.OAUTHTEST_CHROMIUM || '/usr/bin/chromium';
const CLIENT_ID = 'browser-app.apps.googleusercontent.com';
const CLIENT_SECRET = 'browser-app-secret';
const GMAIL = 'https://www.googleapis.com/auth/gmail.readonly';
const EMAIL_SCOPE = 'https://www.googleapis.com/auth/userinfo.email';

const admin = adminOf(BASE);

function oauthClient(redirectUri) {
  return clientOf(BASE, { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri });
}

// The example web app: sessions by state, a store of refresh tokens by account.
function startApp() {
  const app = { sessions: new Map(), stored: new Map(), callbacks: 0, exchanges: 0 };
  const page = (res, status, text) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><body><p id="result">${text}</p></body></html>`);
  };
  app.server = http.createServer(async (req, res) => {
    const url = new URL(req.url, app.origin);
    try {
      if (url.pathname === '/login' || url.pathname === '/login-unregistered') {
        const path = url.pathname === '/login' ? '/callback' : '/unregistered-callback';
        const oauth = oauthClient(`${app.origin}${path}`);
        const { codeVerifier, codeChallenge } = await oauth.generateCodeVerifierAsync();
        const state = crypto.randomBytes(16).toString('hex');
        app.sessions.set(state, { codeVerifier, redirectUri: `${app.origin}${path}` });
        res.writeHead(302, {
          location: oauth.generateAuthUrl({
            access_type: 'offline',
            prompt: 'consent',
            scope: ['openid', EMAIL_SCOPE, GMAIL],
            state,
            code_challenge_method: 'S256',
            code_challenge: codeChallenge,
          }),
        });
        res.end();
      } else if (url.pathname === '/callback' || url.pathname === '/unregistered-callback') {
        app.callbacks += 1;
        const session = app.sessions.get(url.searchParams.get('state'));
        app.sessions.delete(url.searchParams.get('state'));
        if (!session) return page(res, 400, 'unknown state');
        const error = url.searchParams.get('error');
        if (error) return page(res, 403, `sign-in refused: ${error}`);
        const oauth = oauthClient(session.redirectUri);
        app.exchanges += 1;
        const { tokens } = await oauth.getToken({
          code: url.searchParams.get('code'),
          codeVerifier: session.codeVerifier,
        });
        const ticket = await oauth.verifyIdToken({ idToken: tokens.id_token, audience: CLIENT_ID });
        const email = ticket.getPayload().email;
        assert.ok(tokens.refresh_token, 'offline access with prompt=consent gives a refresh token');
        app.stored.set(email, tokens.refresh_token);
        page(res, 200, `signed in as ${email}`);
      } else {
        page(res, 404, 'not found');
      }
    } catch (e) {
      page(res, 500, `sign-in failed: ${e.message}`);
    }
  });
  return new Promise((resolve) => {
    app.server.listen(0, '127.0.0.1', () => {
      app.origin = `http://127.0.0.1:${app.server.address().port}`;
      resolve(app);
    });
  });
}

async function authorizationCodeRequests() {
  const journal = await admin('GET', 'requests?endpoint=token');
  return journal.requests.filter((r) => r.grant_type === 'authorization_code').length;
}

async function check_browser_sign_in_with_pkce_ends_with_a_stored_refresh_token(browser, app) {
  const page = await browser.newPage();
  const response = await page.goto(`${app.origin}/login`);
  assert.equal(new URL(page.url()).pathname, '/callback');
  assert.equal(response.status(), 200, await page.textContent('#result'));
  assert.equal(await page.textContent('#result'), 'signed in as test-user@example.com');
  const refreshToken = app.stored.get('test-user@example.com');
  assert.match(refreshToken, /^1\/\//);
  assert.equal(await authorizationCodeRequests(), 1);
  // The stored refresh token works: the library refreshes with it.
  const oauth = oauthClient(`${app.origin}/callback`);
  oauth.setCredentials({ refresh_token: refreshToken });
  const { credentials } = await oauth.refreshAccessToken();
  assert.match(credentials.access_token, /^ya29\./);
  await page.close();
}

async function check_browser_consent_denied_redirects_with_access_denied_and_nothing_is_exchanged(
  browser,
  app,
) {
  await admin('POST', 'consent', { deny: true });
  const before = await authorizationCodeRequests();
  const { exchanges } = app;
  app.stored.clear();
  const page = await browser.newPage();
  const response = await page.goto(`${app.origin}/login`);
  const landed = new URL(page.url());
  assert.equal(landed.pathname, '/callback');
  assert.equal(landed.searchParams.get('error'), 'access_denied');
  assert.equal(landed.searchParams.get('code'), null);
  assert.equal(response.status(), 403);
  assert.equal(await page.textContent('#result'), 'sign-in refused: access_denied');
  assert.equal(app.stored.size, 0);
  assert.equal(app.exchanges, exchanges);
  assert.equal(await authorizationCodeRequests(), before);
  await admin('POST', 'consent', {});
  await page.close();
}

async function check_browser_unregistered_redirect_uri_is_refused_on_the_page_without_a_redirect(
  browser,
  app,
) {
  const callbacks = app.callbacks;
  const page = await browser.newPage();
  const response = await page.goto(`${app.origin}/login-unregistered`);
  assert.equal(response.status(), 400);
  assert.ok(page.url().startsWith(`${BASE}/o/oauth2/v2/auth?`), page.url());
  const text = await page.textContent('body');
  assert.match(text, /Error 400: redirect_uri_mismatch/);
  assert.equal(app.callbacks, callbacks, 'the browser must not be sent back to the app');
  await page.close();
}

const CHECKS = [
  check_browser_sign_in_with_pkce_ends_with_a_stored_refresh_token,
  check_browser_consent_denied_redirects_with_access_denied_and_nothing_is_exchanged,
  check_browser_unregistered_redirect_uri_is_refused_on_the_page_without_a_redirect,
];

(async () => {
  const app = await startApp();
  let browser;
  try {
    await admin('POST', 'reset');
    // A web client: only its own callback is registered (no loopback leniency).
    await admin('POST', 'clients', {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${app.origin}/callback`],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-extensions',
        '--no-first-run',
        '--no-default-browser-check',
        '--no-proxy-server',
      ],
    });
    for (const check of CHECKS) {
      await check(browser, app);
      console.log(`PASS ${check.name}`);
    }
  } finally {
    if (browser) await browser.close();
    app.server.close();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
