//! The outcome vocabulary: one name per way a refresh (or a job around it) can end. The
//! exchange, the engine, scenario files, reports and the JSON output all use these names, and
//! code compares against these constants, never against a repeated string.

/// HTTP 200 with a usable token: the credential was refreshed.
pub const REFRESHED: &str = "refreshed";
/// The stored token was still fresh (or another worker had just refreshed it).
pub const NOT_NEEDED: &str = "not_needed";
/// `invalid_grant`, or no refresh token: the user must reconnect.
pub const NEEDS_RECONNECT: &str = "needs_reconnect";
/// `invalid_client`, `deleted_client`, `unauthorized_client`: the OAuth client is wrong.
pub const CLIENT_MISCONFIGURED: &str = "client_misconfigured";
/// Any other OAuth error JSON at a 4xx status.
pub const REQUEST_REJECTED: &str = "request_rejected";
/// Transient failures that outlasted the retries: try again later.
pub const RETRY_LATER: &str = "retry_later";
/// A response that breaks the protocol (a bad success body, a redirect).
pub const PROTOCOL_ERROR: &str = "protocol_error";
/// The engine could not take or keep its refresh lease.
pub const LEASE_ERROR: &str = "lease_error";
/// The stored credential could not be read or written.
pub const CREDENTIAL_ERROR: &str = "credential_error";

/// Every outcome a job can end with that a scenario may expect.
pub const JOB_OUTCOMES: &[&str] = &[
    REFRESHED,
    NOT_NEEDED,
    NEEDS_RECONNECT,
    CLIENT_MISCONFIGURED,
    REQUEST_REJECTED,
    RETRY_LATER,
    PROTOCOL_ERROR,
];
