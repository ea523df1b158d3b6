//! Wire-level tests of the mock Google: a plain HTTP client, exact statuses, bodies and headers.
//!
//! The mock is only worth something if it answers byte for byte as the reference says Google
//! does, so these tests talk to it over loopback HTTP (never through an OAuth library, which
//! would hide the bytes) and compare whole bodies.

mod concurrency;
mod detached;
mod device;
mod endpoints;
mod family;
mod front;
mod helpers;
mod identity;
mod journal;
mod revocation;
mod scripts;
mod token;
