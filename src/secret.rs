//! One type per kind of secret a Google credential holds, so that one cannot be passed as another.
//!
//! An access token, a refresh token, an ID token and a client secret are all strings, and all
//! were once `secrecy::SecretString`: nothing stopped a refresh token from reaching the API call
//! or an access token from reaching the token exchange. Each is now its own newtype over
//! [`SecretString`]; the functions that use one say which ([`crate::google_api`] takes an
//! [`AccessToken`], [`crate::exchange::RefreshRequest`] a [`RefreshToken`] and a
//! [`ClientSecret`]), so the compiler refuses a mix-up:
//!
//! ```compile_fail
//! use oauthtest::secret::{AccessToken, RefreshToken};
//! fn call_api(_token: &AccessToken) {}
//! let refresh = RefreshToken::from("1//refresh");
//! call_api(&refresh); // error[E0308]: mismatched types
//! ```
//!
//! # Security
//! None of these types has `Display` or `Serialize`: the value leaves only through
//! [`expose_secret`](AccessToken::expose_secret), at the one place that sends or stores it.
//! Each also implements [`secrecy::ExposeSecret`], for code generic over secrets. `Debug` prints
//! the type's name and `[redacted]`; [`fingerprint`](AccessToken::fingerprint)
//! names a token in reports without revealing it. `Deserialize` exists so a decrypted payload can
//! be read straight into them. The inner buffer is zeroized on drop.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// What every `Debug` of a secret prints in place of its value.
pub const REDACTED: &str = "[redacted]";

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// The value, for the one place that sends or stores it.
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// Names the secret in reports without revealing it: the first 12 hex digits of its
            /// SHA-256 (the digest the mock Google journals, so the two can be matched).
            #[must_use]
            pub fn fingerprint(&self) -> String {
                mock_server::fingerprint(self.expose_secret())
            }
        }

        impl ExposeSecret<str> for $name {
            fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(SecretString::from(value))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(SecretString::from(value))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({REDACTED})", stringify!($name))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                SecretString::deserialize(deserializer).map(Self)
            }
        }
    };
}

secret_type!(
    /// An OAuth access token: what the Google API call and tokeninfo take.
    AccessToken
);
secret_type!(
    /// An OAuth refresh token: what the token exchange takes.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect ID token, returned with the `openid` scope; only ever stored.
    IdToken
);
secret_type!(
    /// An OAuth client's secret, sent with each refresh.
    ClientSecret
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_kind_and_redacts_the_value() {
        assert_eq!(
            format!("{:?}", AccessToken::from("ya29.PLANTED")),
            "AccessToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", RefreshToken::from("1//PLANTED")),
            "RefreshToken([redacted])"
        );
        assert_eq!(
            format!("{:#?}", Some(IdToken::from("eyJ.PLANTED"))),
            "Some(\n    IdToken([redacted]),\n)"
        );
        assert_eq!(
            format!("{:?}", ClientSecret::from("PLANTED")),
            "ClientSecret([redacted])"
        );
    }

    #[test]
    fn fingerprint_is_a_short_digest_not_the_token() {
        let token = AccessToken::from("ya29.PLANTED-ACCESS");
        let fp = token.fingerprint();
        assert_eq!(fp.len(), 12);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(fp, AccessToken::from("ya29.PLANTED-ACCESS").fingerprint());
        assert_ne!(fp, AccessToken::from("ya29.PLANTED-ACCESs").fingerprint());
        // The same value names the same token whatever its kind, as the mock journals it.
        assert_eq!(fp, RefreshToken::from("ya29.PLANTED-ACCESS").fingerprint());
        assert_eq!(fp, mock_server::fingerprint("ya29.PLANTED-ACCESS"));
    }

    #[test]
    fn reads_from_json_and_exposes_only_on_request() {
        let t: RefreshToken = serde_json::from_str("\"1//PLANTED\"").unwrap();
        assert_eq!(t.expose_secret(), "1//PLANTED");
        assert!(!format!("{t:?}").contains("PLANTED"));
    }
}
