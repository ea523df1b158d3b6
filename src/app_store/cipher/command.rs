//! `cipher = "command"`: the application's own utility seals and opens payloads (a KMS client,
//! a Rails or Laravel runner, a script around the application's encryption module).
//!
//! The input goes on stdin, the result comes back on stdout (one trailing newline removed); the
//! command sees `OAUTHTEST_ROW_ID` (the row's id, so it can bind the value to its row) and
//! `OAUTHTEST_OPERATION` (`encrypt` or `decrypt`). A non-zero exit, a timeout or output that is
//! not UTF-8 is an error; the command's own stderr is never shown, as it may hold secrets.

use crate::app_store::config::{CommandSpec, StoreConfig};
use crate::app_store::error::AppStoreError;
use crate::app_store::RowId;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

pub(super) struct Commands {
    encrypt: CommandSpec,
    decrypt: CommandSpec,
    timeout: Duration,
}

impl Commands {
    pub(super) fn from_config(cfg: &StoreConfig) -> Self {
        let none = || CommandSpec::Argv(Vec::new());
        Self {
            encrypt: cfg.encrypt_cmd.clone().unwrap_or_else(none),
            decrypt: cfg.decrypt_cmd.clone().unwrap_or_else(none),
            timeout: cfg.command_timeout,
        }
    }

    pub(super) async fn decrypt(
        &self,
        table: &str,
        row: &RowId,
        stored: &str,
    ) -> Result<Zeroizing<Vec<u8>>, AppStoreError> {
        run(
            &self.decrypt,
            "store.decrypt_cmd",
            "decrypt",
            table,
            row,
            stored.as_bytes(),
            self.timeout,
        )
        .await
    }

    pub(super) async fn encrypt(
        &self,
        table: &str,
        row: &RowId,
        plaintext: &[u8],
    ) -> Result<String, AppStoreError> {
        let out = run(
            &self.encrypt,
            "store.encrypt_cmd",
            "encrypt",
            table,
            row,
            plaintext,
            self.timeout,
        )
        .await?;
        let text = String::from_utf8(out.to_vec()).map_err(|_| AppStoreError::Command {
            table: table.to_owned(),
            row: row.to_string(),
            key: "store.encrypt_cmd".to_owned(),
            problem: "printed something that is not UTF-8 text; the stored value must be text"
                .to_owned(),
        })?;
        Ok(text)
    }
}

async fn run(
    spec: &CommandSpec,
    key: &str,
    operation: &str,
    table: &str,
    row: &RowId,
    input: &[u8],
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, AppStoreError> {
    let err = |problem: String| AppStoreError::Command {
        table: table.to_owned(),
        row: row.to_string(),
        key: key.to_owned(),
        problem,
    };
    let mut cmd = match spec {
        CommandSpec::Shell(line) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        CommandSpec::Argv(argv) => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| err("names no program".into()))?;
            let mut c = tokio::process::Command::new(program);
            c.args(args);
            c
        }
    };
    cmd.env("OAUTHTEST_ROW_ID", row.as_str())
        .env("OAUTHTEST_OPERATION", operation)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| err(format!("cannot be started: {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| err("has no stdin".into()))?;
    let input = Zeroizing::new(input.to_vec());
    let writer = async move {
        // A command that exits without reading its input closes the pipe: that is its answer.
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    };
    let waited = tokio::time::timeout(timeout, async {
        let (_, out) = tokio::join!(writer, child.wait_with_output());
        out
    })
    .await
    .map_err(|_| {
        err(format!(
            "did not finish within {} s (store.command_timeout_secs); it was stopped",
            timeout.as_secs()
        ))
    })?
    .map_err(|e| err(format!("failed: {e}")))?;
    let stdout = Zeroizing::new(waited.stdout);
    if !waited.status.success() {
        let status = waited.status.code().map_or_else(
            || "was killed by a signal".to_owned(),
            |c| format!("exited with status {c}"),
        );
        return Err(err(format!(
            "{status} (its output is not shown, it may hold secrets; run it by hand on this row to see why)"
        )));
    }
    let mut out = stdout.to_vec();
    if out.ends_with(b"\n") {
        out.pop();
        if out.ends_with(b"\r") {
            out.pop();
        }
    }
    Ok(Zeroizing::new(out))
}
