//! Errors the mock can return to its caller: it cannot start, or a setting is out of range.
//!
//! Requests that the mock answers with an HTTP error are not errors here: they are the mock
//! working as intended. Only setting the mock up (or moving its clock too far) can fail.

/// Why [`MockGoogle`](crate::MockGoogle) could not start or take a setting.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// No loopback port could be bound.
    #[error("could not bind a loopback port for the mock Google server")]
    Bind(#[source] std::io::Error),
    /// The listener handed to [`MockGoogle::start_on`](crate::MockGoogle::start_on) is unusable.
    #[error("the listener given to the mock Google server is unusable")]
    Listener(#[source] std::io::Error),
    /// The configuration contradicts itself.
    #[error("invalid mock configuration: {0}")]
    InvalidConfig(String),
    /// A number is beyond what the mock can represent; the message names the limit.
    #[error("out of range: {0}")]
    OutOfRange(String),
}
