//! Integration tests: the real `oauthtest` binary and the library, on SQLite and PostgreSQL.

mod support;

mod app_copy;
mod app_loop;
mod app_modes;
mod app_scenarios;
mod app_store;
mod app_worker_rows;
mod app_workers;
mod browser;
mod command_line;
mod container;
mod crash;
mod device_flow;
mod docs;
mod doctor;
mod faults;
mod fuzz_regressions;
mod google_clients;
mod hostile;
mod interrupted;
mod layers;
mod leak_audit;
#[path = "../../build/probe.rs"]
mod probe;
mod pytest_plugin;
mod revocation;
mod scenarios;
mod serve;
mod serve_abuse;
mod staging;
mod store;
mod worker_sim;
mod worker_sim_serve;
