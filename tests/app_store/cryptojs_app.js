#!/usr/bin/env node
// n8n's credential encryption: crypto-js AES.encrypt(JSON.stringify(data), encryptionKey), the
// OpenSSL "Salted__" format with an EVP_BytesToKey (MD5) passphrase, base64.
//
// tests/cli/app_store.rs runs it to write n8n-shaped rows and to read them back after oauthtest
// wrote them.
//
//   cryptojs_app.js encrypt < JSON    sealed with N8N_ENCRYPTION_KEY, as n8n stores it
//   cryptojs_app.js decrypt < VALUE   the JSON, as n8n reads it (exit 3 when it does not open)
'use strict';
const CryptoJS = require('crypto-js');

const key = process.env.N8N_ENCRYPTION_KEY;
const input = require('fs').readFileSync(0, 'utf8');
const command = process.argv[2];

if (command === 'encrypt') {
  process.stdout.write(CryptoJS.AES.encrypt(JSON.stringify(JSON.parse(input)), key).toString());
} else if (command === 'decrypt') {
  let text = '';
  try {
    text = CryptoJS.AES.decrypt(input.trim(), key).toString(CryptoJS.enc.Utf8);
    process.stdout.write(JSON.stringify(JSON.parse(text)));
  } catch (e) {
    process.stderr.write('does not decrypt\n');
    process.exit(3);
  }
} else {
  process.stderr.write('usage: cryptojs_app.js encrypt|decrypt\n');
  process.exit(2);
}
