// What the Node scripts here share: the admin API of `oauthtest --mode serve`, and Google's Node
// library pointed at it (only its endpoints changed, as an application does for a staging
// Google).
'use strict';

const assert = require('node:assert/strict');
const { OAuth2Client } = require('google-auth-library');

// An admin API caller for the server at `base`.
function adminOf(base) {
  return async function admin(method, path, body) {
    const response = await fetch(`${base}/__admin/${path}`, {
      method,
      // The admin API takes JSON only (a cross-origin page cannot send it without a preflight).
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(response.ok, `admin ${path}: ${response.status}`);
    return response.json();
  };
}

// An OAuth2Client of google-auth-library whose Google is the server at `base`.
function clientOf(base, { clientId, clientSecret, redirectUri }) {
  return new OAuth2Client({
    clientId,
    clientSecret,
    redirectUri,
    endpoints: {
      oauth2AuthBaseUrl: `${base}/o/oauth2/v2/auth`,
      oauth2TokenUrl: `${base}/token`,
      tokenInfoUrl: `${base}/tokeninfo`,
      oauth2RevokeUrl: `${base}/revoke`,
      oauth2FederatedSignonPemCertsUrl: `${base}/oauth2/v1/certs`,
      oauth2FederatedSignonJwkCertsUrl: `${base}/oauth2/v3/certs`,
    },
  });
}

module.exports = { adminOf, clientOf };
