//! The judge on a store shared with rows that are not the run's.

use super::invariants::judge;
use super::{build_rig, Behaviour, ProcessTotals, SimConfig};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

fn config(database_url: &str) -> SimConfig {
    SimConfig {
        workers: 1,
        jobs: 0,
        credentials: 2,
        token_ttl: Duration::from_secs(3600),
        behaviour: Behaviour::Success,
        processes: 1,
        database_url: Some(database_url.to_owned()),
        progress: false,
        coordinate: true,
        request_timeout: Duration::from_secs(5),
    }
}

fn no_jobs() -> ProcessTotals {
    ProcessTotals {
        jobs_succeeded: 0,
        jobs_failed: 0,
        failures_by_outcome: BTreeMap::new(),
        failure_reasons: BTreeMap::new(),
        token_attempts: 0,
        latency_histogram: String::new(),
        reconnect_failure_max_us: 0,
    }
}

async fn spoil(url: &str, id: i64) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    sqlx::query("UPDATE oauthtest_credentials SET user_id = 'abc' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn a_bad_row_that_is_not_the_runs_is_not_judged_and_one_of_its_own_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    // Another run's rows in the same store, one of which no longer reads.
    let other = build_rig(&config(&url)).await.unwrap();
    spoil(&url, other.credentials[0].id).await;

    let rig = build_rig(&config(&url)).await.unwrap();
    let verdict = judge(&rig, &config(&url), &no_jobs(), &HashSet::new())
        .await
        .unwrap();
    assert!(verdict.held(), "{:?}", verdict.invariants);

    let own = rig.credentials[1].id;
    spoil(&url, own).await;
    let verdict = judge(&rig, &config(&url), &no_jobs(), &HashSet::new())
        .await
        .unwrap();
    let lost = verdict
        .invariants
        .iter()
        .find(|i| i.name.starts_with("no token lost"))
        .unwrap();
    assert!(!lost.held);
    assert!(
        lost.detail
            .contains(&format!("{own}: the row cannot be read: user_id")),
        "{}",
        lost.detail
    );
}
