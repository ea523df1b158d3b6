//! The dispatch table: one arm per task, each calling the feature that implements its mode.

use crate::error::Result;
use crate::report::Report;
use crate::settings::Settings;
use crate::task::{AppTask, Task};
use crate::{doctor, manage, scenarios, serve, staging, worker_sim};

/// Runs the task the command line asks for.
///
/// # Errors
/// Whatever the mode fails with; see [`crate::error::Error`].
pub async fn dispatch(settings: &Settings, task: Task) -> Result<Box<dyn Report>> {
    Ok(match task {
        Task::Init => Box::new(manage::init::run(settings).await?),
        Task::List(args) => Box::new(manage::list::run(settings, &args).await?),
        Task::Import(args) => Box::new(manage::import::run(settings, &args).await?),
        Task::Keygen => Box::new(manage::keygen::run()),
        Task::Rekey(args) => Box::new(manage::rekey::run(settings, &args).await?),
        Task::Mock(args) => Box::new(scenarios::mode::run_one(settings, &args).await?),
        Task::MockAll(args) => Box::new(scenarios::mode::run_all(settings, &args).await?),
        Task::WorkerSim(args) => Box::new(worker_sim::mode::run(settings, &args).await?),
        Task::WorkerSimExternal(args) => {
            Box::new(worker_sim::external::run_external(settings, &args).await?)
        }
        Task::Real(args) => Box::new(staging::real::run(settings, &args).await?),
        Task::ForceExpire(args) => Box::new(staging::force_expire::run(settings, &args).await?),
        Task::Copy(args) => Box::new(staging::copy::run(settings, &args).await?),
        Task::Scrub(args) => Box::new(staging::scrub::run(settings, &args).await?),
        Task::Serve(args) => Box::new(serve::mode::run(settings, &args).await?),
        Task::Doctor(args) => Box::new(doctor::run(settings, &args).await?),
        Task::Cleanup(args) => Box::new(manage::cleanup::run(settings, &args).await?),
        Task::App(task) => app(settings, task).await?,
    })
}

/// The modes on the application's own store (`--store-config`).
async fn app(settings: &Settings, task: AppTask) -> Result<Box<dyn Report>> {
    Ok(match task {
        AppTask::List(args) => Box::new(manage::app_list::run(settings, &args).await?),
        AppTask::Import(args) => Box::new(manage::app_import::run(settings, &args).await?),
        AppTask::Real(args) => Box::new(staging::app::real(settings, &args).await?),
        AppTask::ForceExpire(args) => {
            Box::new(staging::app_force_expire::force_expire(settings, &args).await?)
        }
        AppTask::Scrub(args) => Box::new(staging::app_scrub::run(settings, &args).await?),
        AppTask::Doctor(_) => Box::new(doctor::app::run(settings).await?),
        AppTask::WorkerSim(args) => Box::new(worker_sim::app_workers::run(settings, &args).await?),
        AppTask::WorkerSimRows(args) => Box::new(worker_sim::app_rows::run(settings, &args).await?),
    })
}
