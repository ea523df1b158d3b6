"""pytest fixtures and a client for oauthtest's mock Google (``oauthtest --mode serve``)."""

from .server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_SCOPES,
    AdminError,
    OAuthTestError,
    OAuthTestServer,
    find_binary,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_SCOPES",
    "AdminError",
    "OAuthTestError",
    "OAuthTestServer",
    "find_binary",
]
