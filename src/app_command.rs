//! How oauthtest runs the application's own commands (`mock-all --target-cmd`, `worker-sim
//! --target-cmd` / `--enqueue-cmd`, `force-expire --trigger-cmd`): one way to start them and one
//! list of the mock's endpoints they are told, so that every command sees the same environment.

use mock_server::MockGoogle;
use std::process::Stdio;

/// `sh -c CMD`, stdin closed, stdout and stderr piped, killed when dropped, in a process group
/// of its own (so that a timeout or a stop takes whatever CMD started too), with every
/// `OAUTHTEST_*` variable this process inherited replaced by `env`.
pub fn sh_command<'a>(
    cmd: &str,
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OAUTHTEST_") {
            command.env_remove(name);
        }
    }
    command.envs(env);
    command
}

/// The mock's endpoints, in the variables the README documents for every command run against it.
pub fn endpoint_env(mock: &MockGoogle) -> [(&'static str, String); 6] {
    [
        ("OAUTHTEST_BASE_URL", mock.uri()),
        ("OAUTHTEST_TOKEN_URL", mock.token_url()),
        ("OAUTHTEST_TOKENINFO_URL", mock.tokeninfo_url()),
        ("OAUTHTEST_REVOKE_URL", mock.revoke_url()),
        ("OAUTHTEST_API_URL", mock.api_url()),
        ("OAUTHTEST_DISCOVERY_URL", mock.discovery_url()),
    ]
}
