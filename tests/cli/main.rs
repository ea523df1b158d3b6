//! Integration tests: the real `oauthtest` binary and the library, on SQLite and PostgreSQL.

mod support;

mod crash;
mod docs;
mod doctor;
mod faults;
mod fuzz_regressions;
mod google_clients;
mod leak_audit;
mod scenarios;
mod serve;
mod serve_abuse;
mod staging;
mod store;
mod worker_sim;
