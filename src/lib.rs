//! oauthtest
