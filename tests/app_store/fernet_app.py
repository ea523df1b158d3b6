#!/usr/bin/env python3
"""A FastAPI/Django-style application's encryption utility: Python `cryptography`'s Fernet.

tests/cli/app_store.rs runs it to write application rows and to read them back after oauthtest
wrote them, so the format is checked against the real library, not against our reading of it.

    fernet_app.py keygen             prints a new key (Fernet.generate_key())
    fernet_app.py encrypt < JSON     json.dumps(payload), sealed with APP_ENCRYPTION_KEY
    fernet_app.py decrypt < TOKEN    the payload, opened with APP_ENCRYPTION_KEY and the
                                     comma-separated APP_OLD_KEYS (MultiFernet), as JSON

A token that does not open exits 3 with "InvalidToken" on stderr.
"""

import json
import os
import sys

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def keyring() -> MultiFernet:
    keys = [os.environ["APP_ENCRYPTION_KEY"]]
    keys += [k for k in os.environ.get("APP_OLD_KEYS", "").split(",") if k.strip()]
    return MultiFernet([Fernet(k.strip()) for k in keys])


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "keygen":
        print(Fernet.generate_key().decode())
    elif command == "encrypt":
        payload = json.loads(sys.stdin.read())
        sys.stdout.write(keyring().encrypt(json.dumps(payload).encode()).decode())
    elif command == "decrypt":
        try:
            plain = keyring().decrypt(sys.stdin.read().strip().encode())
        except InvalidToken:
            print("InvalidToken", file=sys.stderr)
            return 3
        sys.stdout.write(json.dumps(json.loads(plain)))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
