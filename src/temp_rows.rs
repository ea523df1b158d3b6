//! Temporary rows a run put into a store it was pointed at, removed on every path out of it.
//!
//! `mock`, `mock-all` and `worker-sim` given `--database-url` seed their credentials into that
//! store and delete them when they are done; `mock` and `mock-all --target-cmd` with a store
//! config seed one row per scenario into the application's own table (see [`expect_app`]), and
//! `worker-sim --target-cmd` its credentials. A run can also end early: an error, SIGINT or
//! SIGTERM, a panic. Each seeded row is named with this run's mark ([`name`]) and registered
//! here as it is written, and released when the mode deletes it; after every run the binary
//! calls [`remove_all`], which deletes whatever is still registered and, when the run did not
//! end normally, every row carrying this run's mark (a row whose insert was committed just as the
//! task writing it was cancelled is never registered). Only a `kill -9` leaves rows behind, and
//! their name says what they are and whose they are: `… (temporary, run 3f2a9c1d, pid 4242 on
//! HOST, boot BOOT-ID)`. [`TemporaryRun::liveness`] judges from that whether the run is still
//! alive (same host and boot and its pid running), so `doctor` can name the rows of runs that
//! are gone and `--mode cleanup` can remove exactly those.
//!
//! The same holds for rows written into an application's own store (`--store-config`, e.g.
//! `worker-sim --target-cmd`): they are inserted through the application-store adapter, named
//! with the mark where the table has a name column, and deleted through it. (An application
//! table without a `name_column` carries no mark: its rows are found by the ids registered, so
//! only the instant between an insert's commit and its registration is uncovered there.)
//!
//! A row's insert, once begun, is seen to its end: each one is written under [`writing`], and on
//! SIGINT or SIGTERM [`settle`] lets the writes already begun finish and register their rows
//! before the run is dropped, and refuses new ones. (Dropping an insert's future does not undo
//! it: the database finishes a statement already sent, and that commit could land after the
//! clean-up looked for the run's rows.)
//!
//! This is process-wide state on purpose, like a signal handler: the rows must be found from
//! `main` after the task that wrote them was cancelled or panicked.

use crate::app_store::{AppStore, RowId, StoreConfig};
use crate::store::{CredentialRow, LeaseOwner, Liveness, Store};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
struct Registry {
    /// Stores this run put temporary rows into (or was about to).
    stores: Vec<String>,
    /// Rows not removed yet.
    rows: Vec<(String, i64)>,
    /// Application tables (database URL, config) this run put temporary rows into.
    app_stores: Vec<(String, StoreConfig)>,
    /// Application rows not removed yet, by [`app_key`].
    app_rows: Vec<(String, RowId)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    stores: Vec::new(),
    rows: Vec::new(),
    app_stores: Vec::new(),
    app_rows: Vec::new(),
});

/// Which application table a row is in: its database and table.
fn app_key(url: &str, cfg: &StoreConfig) -> String {
    format!("{url}\n{}", cfg.table)
}

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while the lock was held leaves the lists as they were: still the right lists.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This run's mark: 8 hex digits, the same for every temporary row the process writes.
pub fn run_mark() -> &'static str {
    static MARK: OnceLock<String> = OnceLock::new();
    MARK.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_owned())
}

/// The name of a temporary row: `what`, marked as temporary and as this run's.
pub fn name(what: &str) -> String {
    format!("{what} {}", suffix())
}

const MARK_START: &str = "(temporary, run ";

fn suffix() -> String {
    static SUFFIX: OnceLock<String> = OnceLock::new();
    SUFFIX
        .get_or_init(|| {
            let me = LeaseOwner::this_process();
            format!(
                "{MARK_START}{}, pid {} on {}, boot {})",
                run_mark(),
                me.pid,
                me.host,
                me.boot
            )
        })
        .clone()
}

/// Whether `name` is the name of a temporary row (of any run).
pub fn is_temporary(name: &str) -> bool {
    name.contains(MARK_START)
}

/// What a temporary row's name says about the run that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The run's mark (8 hex digits).
    pub run: String,
    /// The writing process, when the name records it (rows written by an oauthtest before
    /// issue 18 carry the run's mark only).
    pub owner: Option<LeaseOwner>,
}

impl Mark {
    /// Reads the mark at the end of a temporary row's name; `None` for any other name.
    pub fn parse(name: &str) -> Option<Self> {
        let start = name.rfind(MARK_START)?;
        let inner = name[start + MARK_START.len()..].strip_suffix(')')?;
        let (run, rest) = inner.split_once(", ").unwrap_or((inner, ""));
        if run.is_empty() {
            return None;
        }
        let owner = rest.strip_prefix("pid ").and_then(|rest| {
            let (pid, rest) = rest.split_once(" on ")?;
            let (host, boot) = rest.rsplit_once(", boot ")?;
            Some(LeaseOwner {
                host: host.to_owned(),
                boot: boot.to_owned(),
                pid: pid.parse().ok()?,
                run: run.to_owned(),
            })
        });
        Some(Self {
            run: run.to_owned(),
            owner,
        })
    }
}

/// The temporary rows of one run found in a store.
#[derive(Debug, Clone)]
pub struct TemporaryRun {
    /// The run's mark and writer.
    pub mark: Mark,
    /// Its rows' ids.
    pub ids: Vec<i64>,
    /// When the oldest of them was written.
    pub oldest: DateTime<Utc>,
}

impl TemporaryRun {
    /// Whether the run that wrote the rows is still there, as far as this machine can tell
    /// ([`LeaseOwner::liveness`]); [`Liveness::Unknown`] for a mark that names no process.
    pub fn liveness(&self) -> Liveness {
        self.mark.owner.as_ref().map_or(Liveness::Unknown, |o| {
            o.liveness(&LeaseOwner::this_process())
        })
    }

    /// Who wrote the rows, for people: `pid 4242 on HOST`, or that the mark does not say.
    pub fn writer(&self) -> String {
        match &self.mark.owner {
            Some(o) => format!("pid {} on {}", o.pid, o.host),
            None => "a process the mark does not name".to_owned(),
        }
    }

    /// The `--mode cleanup` command that removes these rows once the run is gone (doctor's
    /// fix): naming the run when this machine cannot judge it.
    pub fn cleanup_command(&self) -> String {
        match self.liveness() {
            Liveness::Unknown => format!("oauthtest --mode cleanup --run {} --yes", self.mark.run),
            _ => "oauthtest --mode cleanup --yes".to_owned(),
        }
    }
}

/// The liveness of a run, as a word: `gone`, `rebooted`, `running` or `unknown`.
pub fn liveness_word(l: Liveness) -> &'static str {
    match l {
        Liveness::Gone => "gone",
        Liveness::Rebooted => "rebooted",
        Liveness::Running => "running",
        Liveness::Unknown => "unknown",
    }
}

/// The temporary rows among `rows`, by run (in the order of their marks).
pub fn by_run<'a>(rows: impl IntoIterator<Item = &'a CredentialRow>) -> Vec<TemporaryRun> {
    let mut runs: BTreeMap<String, TemporaryRun> = BTreeMap::new();
    for row in rows {
        let Some(mark) = Mark::parse(&row.name) else {
            continue;
        };
        let run = runs
            .entry(mark.run.clone())
            .or_insert_with(|| TemporaryRun {
                mark,
                ids: Vec::new(),
                oldest: row.created_at,
            });
        run.ids.push(row.id);
        run.oldest = run.oldest.min(row.created_at);
    }
    runs.into_values().collect()
}

/// Records that temporary rows are about to be written into the store at `url`.
pub fn expect(url: &str) {
    let mut r = registry();
    if !r.stores.iter().any(|u| u == url) {
        r.stores.push(url.to_owned());
    }
}

/// Records that row `id` of the store at `url` is temporary.
pub fn register(url: &str, id: i64) {
    expect(url);
    registry().rows.push((url.to_owned(), id));
}

/// Records that rows `ids` of the store at `url` were removed by their owner.
pub fn release(url: &str, ids: &[i64]) {
    registry()
        .rows
        .retain(|(u, id)| !(u == url && ids.contains(id)));
}

/// Records that temporary rows are about to be written into the application's table `cfg`
/// describes, in the database at `url`.
pub fn expect_app(url: &str, cfg: &StoreConfig) {
    let mut r = registry();
    let key = app_key(url, cfg);
    if !r.app_stores.iter().any(|(u, c)| app_key(u, c) == key) {
        r.app_stores.push((url.to_owned(), cfg.clone()));
    }
}

/// Records that row `id` of that application table is temporary.
pub fn register_app(url: &str, cfg: &StoreConfig, id: &RowId) {
    expect_app(url, cfg);
    registry().app_rows.push((app_key(url, cfg), id.clone()));
}

/// Records that row `id` of that application table was removed by its owner.
pub fn release_app(url: &str, cfg: &StoreConfig, id: &RowId) {
    let key = app_key(url, cfg);
    registry()
        .app_rows
        .retain(|(k, row)| !(k == &key && row == id));
}

/// Temporary rows being written, and the signal that stopped new ones.
struct Gate {
    state: Mutex<GateState>,
    /// Woken when the last write in progress ends.
    idle: Notify,
}

struct GateState {
    writing: usize,
    stopped_by: Option<&'static str>,
}

static GATE: Gate = Gate::new();

/// A temporary row being written: held from before its insert until the row is registered (or
/// the write failed). Dropping it, on any path, ends the write.
#[must_use = "the write ends when this is dropped"]
pub struct Writing {
    gate: &'static Gate,
}

/// Why [`writing`] refused: the run is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} arrived: no new temporary row is written")]
pub struct Stopping(pub &'static str);

impl From<Stopping> for crate::error::Error {
    /// A temporary row refused because a signal arrived: the run is being interrupted.
    fn from(stopping: Stopping) -> Self {
        crate::error::Error::Interrupted { signal: stopping.0 }
    }
}

impl Gate {
    const fn new() -> Self {
        Self {
            state: Mutex::new(GateState {
                writing: 0,
                stopped_by: None,
            }),
            idle: Notify::const_new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn begin(&'static self) -> Result<Writing, Stopping> {
        let mut s = self.state();
        if let Some(signal) = s.stopped_by {
            return Err(Stopping(signal));
        }
        s.writing += 1;
        Ok(Writing { gate: self })
    }

    async fn settle(&self, signal: &'static str, limit: Duration) -> bool {
        self.state().stopped_by.get_or_insert(signal);
        tokio::time::timeout(limit, async {
            loop {
                let idle = self.idle.notified();
                let mut idle = std::pin::pin!(idle);
                idle.as_mut().enable();
                if self.state().writing == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await
        .is_ok()
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut s = self.gate.state();
        s.writing -= 1;
        if s.writing == 0 {
            self.gate.idle.notify_waiters();
        }
    }
}

/// Begins writing a temporary row: hold the guard across the insert and its [`register`] /
/// [`register_app`].
///
/// # Errors
/// [`Stopping`] once a signal has arrived ([`settle`]): the caller writes nothing.
pub fn writing() -> Result<Writing, Stopping> {
    GATE.begin()
}

/// On `signal`: refuses new temporary rows and waits, at most `limit`, for the writes already
/// begun to end (their rows registered). Returns whether they all ended in time.
pub async fn settle(signal: &'static str, limit: Duration) -> bool {
    GATE.settle(signal, limit).await
}

/// Whether [`remove_all`] has anything to do after a run that ended normally (`normally`) or
/// not.
pub fn anything_to_remove(normally: bool) -> bool {
    let r = registry();
    !r.rows.is_empty()
        || !r.app_rows.is_empty()
        || (!normally && (!r.stores.is_empty() || !r.app_stores.is_empty()))
}

/// Deletes every registered row (and its history), and with `by_mark` every row of the touched
/// stores carrying this run's mark; returns how many were deleted. A store that cannot be
/// reached keeps its rows (logged).
pub async fn remove_all(by_mark: bool) -> usize {
    let (stores, rows, app_stores, app_rows) = {
        let mut r = registry();
        (
            std::mem::take(&mut r.stores),
            std::mem::take(&mut r.rows),
            std::mem::take(&mut r.app_stores),
            std::mem::take(&mut r.app_rows),
        )
    };
    let suffix = suffix();
    let mut removed = remove_app_rows(app_stores, &app_rows, by_mark, &suffix).await;
    for url in &stores {
        let mut ids: Vec<i64> = rows
            .iter()
            .filter(|(u, _)| u == url)
            .map(|(_, id)| *id)
            .collect();
        let store = match Store::connect(url).await {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(error = %e, "cannot remove temporary rows");
                continue;
            }
        };
        if by_mark {
            match store.list().await {
                Ok(all) => ids.extend(
                    all.iter()
                        .filter(|row| row.name.ends_with(&suffix))
                        .map(|row| row.id),
                ),
                Err(e) => tracing::warn!(error = %e, "cannot look for this run's temporary rows"),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        if store.delete(&ids).await.is_ok() {
            removed += ids.len();
        }
        store.close().await;
    }
    removed
}

/// [`remove_all`]'s part for application tables.
async fn remove_app_rows(
    stores: Vec<(String, StoreConfig)>,
    rows: &[(String, RowId)],
    by_mark: bool,
    suffix: &str,
) -> usize {
    let mut removed = 0;
    for (url, cfg) in stores {
        let key = app_key(&url, &cfg);
        let mut ids: Vec<RowId> = rows
            .iter()
            .filter(|(k, _)| k == &key)
            .map(|(_, id)| id.clone())
            .collect();
        let store = match AppStore::connect(cfg, &url).await {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(error = %e, "cannot remove temporary rows");
                continue;
            }
        };
        if by_mark && store.config().name_column.is_some() {
            match store.list().await {
                Ok(all) => ids.extend(
                    all.into_iter()
                        .filter(|row| row.name.as_deref().is_some_and(|n| n.ends_with(suffix)))
                        .map(|row| row.id),
                ),
                Err(e) => tracing::warn!(error = %e, "cannot look for this run's temporary rows"),
            }
        }
        ids.sort();
        ids.dedup();
        match store.delete(&ids).await {
            Ok(n) => removed += n,
            Err(e) => tracing::warn!(error = %e, "cannot remove temporary rows"),
        }
        store.close().await;
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_names_its_run_and_writer_and_this_process_is_alive() {
        let name = name("worker-sim credential 0");
        assert!(is_temporary(&name));
        let mark = Mark::parse(&name).unwrap();
        assert_eq!(mark.run, run_mark());
        let owner = mark.owner.unwrap();
        assert_eq!(owner.pid, std::process::id());
        let run = TemporaryRun {
            mark: Mark::parse(&name).unwrap(),
            ids: vec![1],
            oldest: Utc::now(),
        };
        assert_eq!(run.liveness(), Liveness::Running);
    }

    #[test]
    fn marks_of_other_shapes_read_as_far_as_they_go() {
        let old = Mark::parse("oauthtest scenario x (temporary, run 3f2a9c1d)").unwrap();
        assert_eq!((old.run.as_str(), old.owner), ("3f2a9c1d", None));
        let odd = Mark::parse("y (temporary, run ab12cd34, pid 7 on a, b, boot c-d)").unwrap();
        let owner = odd.owner.unwrap();
        assert_eq!(
            (owner.pid, owner.host.as_str(), owner.boot.as_str()),
            (7, "a, b", "c-d")
        );
        assert!(Mark::parse("Google credential").is_none());
        assert!(Mark::parse("x (temporary, run )").is_none());
        // Another host: nothing can be proven.
        let far = TemporaryRun {
            mark: Mark::parse("z (temporary, run 00000001, pid 1 on elsewhere, boot b)").unwrap(),
            ids: vec![2],
            oldest: Utc::now(),
        };
        assert_eq!(far.liveness(), Liveness::Unknown);
    }

    fn new_gate() -> &'static Gate {
        Box::leak(Box::new(Gate::new()))
    }

    #[tokio::test]
    async fn a_signal_waits_for_the_rows_being_written_and_refuses_new_ones() {
        let gate = new_gate();
        let registered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writing = gate.begin().unwrap();
        let done = std::sync::Arc::clone(&registered);
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(writing);
        });
        assert!(gate.settle("SIGINT", Duration::from_secs(30)).await);
        assert!(registered.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(gate.begin().err(), Some(Stopping("SIGINT")));
        // The first signal is the one named.
        assert!(gate.settle("SIGTERM", Duration::from_secs(30)).await);
        assert_eq!(gate.begin().err(), Some(Stopping("SIGINT")));
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_never_ends_holds_a_signal_up_only_until_the_limit() {
        let gate = new_gate();
        let _stuck = gate.begin().unwrap();
        let _other = gate.begin().unwrap();
        assert!(!gate.settle("SIGTERM", Duration::from_secs(5)).await);
        let idle = new_gate();
        assert!(idle.settle("SIGTERM", Duration::from_secs(5)).await);
    }
}
