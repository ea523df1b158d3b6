#!/usr/bin/env node
// A Node application's AES-256-GCM utility, written the common way with Node's own `crypto`:
// a random 12-byte IV, key = 32 bytes in hex (APP_GCM_KEY), base64.
//
//   APP_GCM_LAYOUT=joined (default): one value, base64(iv | authTag | ciphertext)
//   APP_GCM_LAYOUT=split: JSON {"data": base64(ciphertext), "iv": base64(iv), "tag": base64(authTag)},
//                         for applications that keep IV and tag in columns of their own
//
//   gcm_app.js encrypt < JSON     prints the value (or the split JSON)
//   gcm_app.js decrypt < VALUE    prints the JSON (exit 3 when authentication fails)
'use strict';
const crypto = require('crypto');

const key = Buffer.from(process.env.APP_GCM_KEY || '', 'hex');
const split = process.env.APP_GCM_LAYOUT === 'split';
const input = require('fs').readFileSync(0, 'utf8');
const command = process.argv[2];

if (command === 'encrypt') {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(JSON.stringify(JSON.parse(input)), 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  if (split) {
    process.stdout.write(JSON.stringify({
      data: ct.toString('base64'), iv: iv.toString('base64'), tag: tag.toString('base64'),
    }));
  } else {
    process.stdout.write(Buffer.concat([iv, tag, ct]).toString('base64'));
  }
} else if (command === 'decrypt') {
  try {
    let iv, tag, ct;
    if (split) {
      const parts = JSON.parse(input);
      [iv, tag, ct] = [parts.iv, parts.tag, parts.data].map((p) => Buffer.from(p, 'base64'));
    } else {
      const raw = Buffer.from(input.trim(), 'base64');
      [iv, tag, ct] = [raw.subarray(0, 12), raw.subarray(12, 28), raw.subarray(28)];
    }
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(tag);
    const text = Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
    process.stdout.write(JSON.stringify(JSON.parse(text)));
  } catch (e) {
    process.stderr.write('does not decrypt\n');
    process.exit(3);
  }
} else {
  process.stderr.write('usage: gcm_app.js encrypt|decrypt\n');
  process.exit(2);
}
