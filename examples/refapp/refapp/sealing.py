"""The application's encryption utility: Fernet over the credential's JSON.

The key is ``APP_ENCRYPTION_KEY`` (``Fernet.generate_key()``); previous keys, comma-separated, in
``APP_OLD_ENCRYPTION_KEYS`` still open old rows (MultiFernet).
"""

import json
import os

from cryptography.fernet import Fernet, MultiFernet

from refapp.db import ConfigError


def _fernet():
    key = os.environ.get("APP_ENCRYPTION_KEY")
    if not key:
        raise ConfigError("APP_ENCRYPTION_KEY is not set")
    old = [k for k in os.environ.get("APP_OLD_ENCRYPTION_KEYS", "").split(",") if k]
    try:
        return MultiFernet([Fernet(k) for k in [key, *old]])
    except ValueError:
        raise ConfigError("APP_ENCRYPTION_KEY: not a Fernet key (32 bytes, URL-safe base64)")


def encrypt_credential(data):
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def decrypt_credential(sealed):
    return json.loads(_fernet().decrypt(sealed.encode()))
