//! SIGINT and SIGTERM as values: a run that is interrupted stops its work, removes its temporary
//! rows ([`crate::temp_rows`]) and exits with [`crate::exit_code::interrupted`]'s code instead of
//! dying mid-write.

use crate::error::{Error, Result};

/// SIGINT and SIGTERM, caught rather than fatal.
pub struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs both handlers.
    ///
    /// # Errors
    /// [`Error::Internal`] when a handler cannot be installed.
    pub fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| {
                Error::Internal(anyhow::anyhow!("cannot install the {name} handler: {e}"))
            })
        };
        Ok(Self {
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// The name of the first of them to arrive.
    pub async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
