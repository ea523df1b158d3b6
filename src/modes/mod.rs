//! One module per mode, each with the same shape: `run(&Settings, &Cli) -> Result<Report>`.

pub mod copy;
pub mod doctor;
pub mod force_expire;
pub mod import;
pub mod keygen;
pub mod list;
pub mod mock;
pub mod real;
pub mod rekey;
pub mod scrub;
pub mod serve;
pub mod staging;
pub mod worker_sim;

use crate::cli::{Cli, Mode};
use crate::error::Result;
use crate::report::Report;
use crate::settings::Settings;

/// Runs the mode the command line asks for.
///
/// # Errors
/// Whatever the mode fails with; see [`crate::error::Error`].
pub async fn dispatch(settings: &Settings, cli: &Cli) -> Result<Box<dyn Report>> {
    Ok(match settings.mode {
        Mode::List => Box::new(list::run(settings, cli).await?),
        Mode::Import => Box::new(import::run(settings, cli).await?),
        Mode::Keygen => Box::new(keygen::run()),
        Mode::Rekey => Box::new(rekey::run(settings, cli).await?),
        Mode::Mock => Box::new(mock::run_one(settings, cli).await?),
        Mode::MockAll => Box::new(mock::run_all(settings, cli).await?),
        Mode::WorkerSim => Box::new(worker_sim::run(settings, cli).await?),
        Mode::Real => Box::new(real::run(settings, cli).await?),
        Mode::ForceExpire => Box::new(force_expire::run(settings, cli).await?),
        Mode::Copy => Box::new(copy::run(settings, cli).await?),
        Mode::Scrub => Box::new(scrub::run(settings, cli).await?),
        Mode::Serve => Box::new(serve::run(settings, cli).await?),
        Mode::Doctor => Box::new(doctor::run(settings, cli).await?),
    })
}
