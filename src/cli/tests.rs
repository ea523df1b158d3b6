//! The command line's own unit tests: the parsed command line shows no secret in `Debug`.

use super::*;

#[test]
fn the_parsed_command_line_debug_prints_no_client_secret() {
    let cli = Cli::try_parse_from([
        "oauthtest",
        "--mode",
        "list",
        "--client-secret",
        "GOCSPX-planted-flag-secret",
    ])
    .unwrap();
    let shown = format!("{cli:?}");
    assert!(shown.contains("client_secret: Some("), "{shown}");
    assert!(!shown.contains("GOCSPX-planted-flag-secret"), "{shown}");
}

#[test]
fn the_parsed_command_line_debug_prints_no_admin_token() {
    let cli = Cli::try_parse_from([
        "oauthtest",
        "--mode",
        "serve",
        "--admin-token",
        "planted-admin-token-flag",
    ])
    .unwrap();
    let shown = format!("{cli:?}");
    assert!(shown.contains("admin_token: Some("), "{shown}");
    assert!(!shown.contains("planted-admin-token-flag"), "{shown}");
}
