//! The command line's own unit tests.

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
