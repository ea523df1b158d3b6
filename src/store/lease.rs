//! The refresh lease: a row lock that cannot outlive its holder, and the write-back fenced on it.

use super::{now, HistoryEntry, Store, StoreError};
use crate::credential::GoogleCredential;
use crate::crypto::Keyring;
use crate::store::{Backend, CredentialState};
use chrono::Utc;
use std::time::Duration;

/// The result of a refresh attempt, as written back by [`Store::complete_refresh`].
#[derive(Debug)]
pub struct RefreshWrite<'a> {
    /// The secrets to seal: new ones after a successful refresh, the ones read otherwise (the
    /// envelope is bound to the version this write leaves the row at). `None` keeps the envelope
    /// and the version as they are.
    pub secrets: Option<&'a GoogleCredential>,
    /// The credential's state afterwards.
    pub state: CredentialState,
    /// The outcome code, e.g. `refreshed`, `needs_reconnect`, `retry_later`.
    pub outcome: &'a str,
    /// Whether this was a retryable failure (bumps the failure count) rather than a result.
    pub failed: bool,
    /// No refresh before this instant (unix ms), after repeated failures.
    pub cooldown_until_ms: Option<i64>,
}

/// Who holds a lease, written into `lease_owner` as `host=H;boot=B;pid=P;run=R`: enough to tell,
/// from the same machine, that the holder is provably gone (killed, or the machine rebooted)
/// so its lease can be taken over at once instead of waiting for it to lapse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    /// The holder's host name (`?` when unknown).
    pub host: String,
    /// The holder machine's boot id (Linux `/proc/sys/kernel/random/boot_id`; `?` when unknown).
    pub boot: String,
    /// The holder's process id.
    pub pid: u32,
    /// Unique per engine, so two engines of one process are told apart.
    pub run: String,
}

/// Whether a lease holder is still there, as far as this machine can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Same host and boot, and no process has its pid: killed or exited without releasing.
    Gone,
    /// Same host but another boot: the machine rebooted since, so the holder is gone.
    Rebooted,
    /// Same host and boot, and a process has its pid (the holder, or one that reused its pid).
    Running,
    /// Another host, or an owner written by an older oauthtest: nothing can be proven.
    Unknown,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains(';') && !s.contains('='))
}

impl LeaseOwner {
    /// This process, with a fresh run id.
    pub fn this_process() -> Self {
        Self {
            host: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "?".into()),
            boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_else(|| "?".into()),
            pid: std::process::id(),
            run: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// Reads a `lease_owner` value; `None` for one this format does not describe.
    pub fn parse(text: &str) -> Option<Self> {
        let mut host = None;
        let mut boot = None;
        let mut pid = None;
        let mut run = None;
        for part in text.split(';') {
            match part.split_once('=')? {
                ("host", v) => host = Some(v.to_owned()),
                ("boot", v) => boot = Some(v.to_owned()),
                ("pid", v) => pid = v.parse().ok(),
                ("run", v) => run = Some(v.to_owned()),
                _ => return None,
            }
        }
        Some(Self {
            host: host?,
            boot: boot?,
            pid: pid?,
            run: run?,
        })
    }

    /// Whether this owner is provably gone, judged from `here` (this process's identity).
    pub fn liveness(&self, here: &LeaseOwner) -> Liveness {
        if self.host == "?" || self.host != here.host {
            return Liveness::Unknown;
        }
        if self.boot != "?" && here.boot != "?" && self.boot != here.boot {
            return Liveness::Rebooted;
        }
        if self.pid == here.pid {
            // This very process: another engine of it, alive by definition.
            return Liveness::Running;
        }
        let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return Liveness::Unknown;
        };
        // Signal 0 tests for existence only; EPERM means it exists under another user.
        match rustix::process::test_kill_process(pid) {
            Err(rustix::io::Errno::SRCH) => Liveness::Gone,
            _ => Liveness::Running,
        }
    }
}

impl std::fmt::Display for LeaseOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host={};boot={};pid={};run={}",
            self.host, self.boot, self.pid, self.run
        )
    }
}

/// What one write-back attempt found ([`Store::complete_refresh`]).
enum Written {
    /// Written.
    Yes,
    /// The lease is no longer ours: nothing written.
    LeaseLost,
    /// The lease is ours but the version moved: seal again and retry.
    VersionMoved,
}

impl Store {
    /// Takes the refresh lease on a credential for `owner` until `ttl` from now, if nobody else
    /// holds a live one. Returns whether it was taken.
    ///
    /// The lease is a row lock that cannot outlive its holder: it lapses by itself after `ttl`,
    /// it is released only by its owner, and every write-back is fenced on it (see
    /// [`Store::complete_refresh`]). No connection is held while the lease is held.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn try_acquire_lease(
        &self,
        id: i64,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = Utc::now().timestamp_millis();
        let until = now_ms + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE oauthtest_credentials SET lease_owner = $1, lease_expires_at_ms = $2
                 WHERE id = $3 AND (lease_owner IS NULL OR lease_expires_at_ms < $4
                                    OR lease_owner = $1)",
            )
            .bind(owner)
            .bind(until)
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Takes over the lease `dead` holds (only that holder's: a compare-and-swap on the owner),
    /// for `owner` until `ttl` from now. For a holder proven gone ([`LeaseOwner::liveness`]).
    /// Returns whether it was taken.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn take_over_lease(
        &self,
        id: i64,
        dead: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let until =
            Utc::now().timestamp_millis() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE oauthtest_credentials SET lease_owner = $1, lease_expires_at_ms = $2
                 WHERE id = $3 AND lease_owner = $4",
            )
            .bind(owner)
            .bind(until)
            .bind(id)
            .bind(dead)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Takes the lease whoever holds it: only for demonstrating an uncoordinated refresh storm.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn steal_lease(&self, id: i64, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        let until =
            Utc::now().timestamp_millis() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE oauthtest_credentials SET lease_owner = $1, lease_expires_at_ms = $2
                 WHERE id = $3",
            )
            .bind(owner)
            .bind(until)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|e| self.query_error(e))
    }

    /// Releases `owner`'s lease on a credential; someone else's lease is left alone.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn release_lease(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE oauthtest_credentials SET lease_owner = NULL, lease_expires_at_ms = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|e| self.query_error(e))
    }

    /// Writes a refresh's result back, fenced on `owner`'s lease, and releases the lease, in one
    /// transaction with its history line. Returns `false` (writing nothing) when the lease was
    /// lost, so a worker whose lease lapsed can never overwrite a newer token.
    ///
    /// New secrets are sealed for the row's next version, which is a compare-and-swap as well:
    /// when another writer that leaves leases alone (rekey) bumped the version meanwhile, the
    /// write is sealed again for the new version and retried while the lease is still ours. A
    /// result without new secrets keeps the envelope and the version.
    ///
    /// # Errors
    /// [`StoreError::Query`]; nothing is written then.
    pub async fn complete_refresh(
        &self,
        id: i64,
        owner: &str,
        result: RefreshWrite<'_>,
        keyring: &Keyring,
        history: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        /// Version races lost in a row before giving up (each needs a concurrent rekey).
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let version = match result.secrets {
                None => None,
                Some(_) => match self.lease_version(id, owner).await? {
                    Some(version) => Some(version),
                    None => return Ok(false),
                },
            };
            match self
                .try_complete_refresh(id, owner, version, &result, keyring, history)
                .await?
            {
                Written::Yes => return Ok(true),
                Written::LeaseLost => return Ok(false),
                Written::VersionMoved => continue,
            }
        }
        Err(StoreError::Query {
            url: self.url.clone(),
            reason: format!(
                "credential {id}: the row's version kept changing during the refresh's \
                 write-back ({ATTEMPTS} attempts); nothing written"
            ),
        })
    }

    /// The row's version, if `owner` still holds its lease.
    async fn lease_version(&self, id: i64, owner: &str) -> Result<Option<i64>, StoreError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT version FROM oauthtest_credentials WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .fetch_optional(pool)
            .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// One write-back attempt: with new secrets, sealed for `version + 1` and fenced on it.
    async fn try_complete_refresh(
        &self,
        id: i64,
        owner: &str,
        version: Option<i64>,
        result: &RefreshWrite<'_>,
        keyring: &Keyring,
        history: &HistoryEntry,
    ) -> Result<Written, StoreError> {
        let at = now();
        let (envelope, expires_at, has_refresh) = match (result.secrets, version) {
            (Some(s), Some(v)) => (
                Some(keyring.seal(&self.binding(id, v + 1)?, &s.to_payload())),
                s.expiry,
                Some(s.refresh_token.is_some()),
            ),
            _ => (None, None, None),
        };
        let key_id = envelope.as_ref().map(|_| keyring.current().id().to_owned());
        let done = on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE oauthtest_credentials SET
                        encrypted_data = COALESCE($1, encrypted_data),
                        key_id = COALESCE($2, key_id),
                        expires_at = CASE WHEN $1 IS NULL THEN expires_at ELSE $3 END,
                        has_refresh_token = COALESCE($4, has_refresh_token),
                        state = $5,
                        last_refresh_at = $6,
                        last_refresh_outcome = $7,
                        failure_count = CASE WHEN $8 THEN failure_count + 1 ELSE 0 END,
                        cooldown_until_ms = $9,
                        updated_at = $6,
                        version = CASE WHEN $1 IS NULL THEN version ELSE version + 1 END,
                        lease_owner = NULL,
                        lease_expires_at_ms = NULL
                     WHERE id = $10 AND lease_owner = $11
                       AND ($12 IS NULL OR version = $12)",
                )
                .bind(&envelope)
                .bind(&key_id)
                .bind(expires_at)
                .bind(has_refresh)
                .bind(result.state.as_str())
                .bind(at)
                .bind(result.outcome)
                .bind(result.failed)
                .bind(result.cooldown_until_ms)
                .bind(id)
                .bind(owner)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if done {
                    insert_history!(&mut *tx, id, at, history)?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(done)
            }
            .await
        })
        .map_err(|e| self.query_error(e))?;
        if done {
            return Ok(Written::Yes);
        }
        Ok(match (version, self.lease_version(id, owner).await?) {
            (Some(_), Some(_)) => Written::VersionMoved,
            _ => Written::LeaseLost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_round_trips_through_its_text() {
        let me = LeaseOwner::this_process();
        assert_eq!(LeaseOwner::parse(&me.to_string()), Some(me));
        assert_eq!(LeaseOwner::parse("pid12-abc"), None);
    }

    #[test]
    fn liveness_is_proven_only_on_the_same_host() {
        let me = LeaseOwner::this_process();
        let other = |host: &str, boot: &str, pid: u32| LeaseOwner {
            host: host.into(),
            boot: boot.into(),
            pid,
            run: "r".into(),
        };
        assert_eq!(
            other(&me.host, &me.boot, me.pid).liveness(&me),
            Liveness::Running
        );
        assert_eq!(
            other("elsewhere", &me.boot, 4_000_000).liveness(&me),
            Liveness::Unknown
        );
        if me.host != "?" && me.boot != "?" {
            // No process has a pid this large (the kernel's limit is 4,194,304).
            assert_eq!(
                other(&me.host, &me.boot, 4_194_999).liveness(&me),
                Liveness::Gone
            );
            assert_eq!(
                other(&me.host, "another-boot", 1).liveness(&me),
                Liveness::Rebooted
            );
            // pid 1 exists (init).
            assert_eq!(
                other(&me.host, &me.boot, 1).liveness(&me),
                Liveness::Running
            );
        }
    }
}
