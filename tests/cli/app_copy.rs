//! `--mode copy` through the application-store adapter: from an application's store (rows
//! written by Python `cryptography`'s Fernet or by crypto-js, as n8n does) into another
//! application store, into oauthtest's own, and from oauthtest's own into an application's;
//! each copy sealed with the destination's key and read back by the application's own library.

use crate::app_store::{
    available, column, fastapi_payload, fastapi_row, fastapi_table, fernet_key, lit, n8n_payload,
    n8n_table, sql, App, Lib,
};
use crate::on_both_backends;
use crate::support::{
    assert_no_secrets, new_key, run, store_snapshot, Backend, Run, TestDb, PLANTED_ACCESS,
    PLANTED_REFRESH,
};
use std::process::Command;

/// Another database of the same backend as `db`.
async fn another(db: &TestDb) -> TestDb {
    match db.backend {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres()
            .await
            .expect("PostgreSQL answered a moment ago"),
    }
}

/// The source application's config: the fernet preset, with production's own key variable.
const PROD_FERNET: &str = "preset = \"fernet\"\n[store]\nkey_env = \"PROD_APP_KEY\"\n";
const STAGING_FERNET: &str = "preset = \"fernet\"\n";

fn copy(cmd: Command, args: &[&str]) -> Run {
    let mut all = vec!["--mode", "copy", "--format", "json"];
    all.extend(args);
    let r = run(cmd, &all, None);
    assert_no_secrets(&r.stdout, &[]);
    assert_no_secrets(&r.stderr, &[]);
    r
}

on_both_backends!(
    copy_goes_between_application_stores_and_oauthtests_own_sealed_with_the_destinations_key,
    copy_goes_between_application_stores_and_oauthtests_own_sealed_with_the_destinations_key
);
async fn copy_goes_between_application_stores_and_oauthtests_own_sealed_with_the_destinations_key(
    prod_db: TestDb,
) {
    if !available(Lib::Fernet) {
        return;
    }
    let (prod_key, staging_key) = (fernet_key(), fernet_key());
    let prod = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &prod_key)]);
    let staging = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &staging_key)]);
    fastapi_table(&prod_db).await;
    let sealed = prod.seal(&fastapi_payload());
    fastapi_row(&prod_db, 7, "gmailOAuth2", "My test account", &sealed).await;
    let staging_db = another(&prod_db).await;
    fastapi_table(&staging_db).await;
    let native_db = another(&prod_db).await;
    let native_key = new_key(native_db.path());
    let prod_cfg = staging_db.write("prod.toml", PROD_FERNET);
    let staging_cfg = staging_db.write("staging.toml", STAGING_FERNET);
    let (prod_cfg, staging_cfg) = (prod_cfg.to_str().unwrap(), staging_cfg.to_str().unwrap());
    let to_staging = |source_key: &str| {
        let mut c = staging_db.cmd();
        c.env("PROD_APP_KEY", source_key)
            .env("APP_ENCRYPTION_KEY", &staging_key);
        c
    };
    let stored = |id: &str| {
        let q = format!("SELECT encrypted_data FROM credentials WHERE id = {id}");
        let db = &staging_db;
        async move { column(db, &q).await.unwrap() }
    };

    // Application -> application: the whole payload, sealed with staging's key.
    let app_to_app = [
        "--store-config",
        staging_cfg,
        "--from-store-config",
        prod_cfg,
        "--from-database-url",
        &prod_db.url,
        "--credential-id",
        "1",
    ];
    let r = copy(to_staging(&prod_key), &app_to_app);
    r.assert_code(0);
    let v = r.json();
    assert_eq!(v["source_table"], "credentials", "{v}");
    assert_eq!(v["table"], "credentials", "{v}");
    assert_eq!(v["source_id"], "1");
    assert_eq!(v["id"], "1");
    assert_eq!(v["user_id"], "7");
    assert_eq!(v["has_refresh_token"], true);
    let copied = stored("1").await;
    assert_eq!(
        staging.open(&copied),
        fastapi_payload(),
        "every field, with staging's key"
    );
    assert!(
        prod.run("decrypt", &copied).is_err(),
        "not with production's"
    );
    let prod_row = "SELECT encrypted_data FROM credentials WHERE id = 1";
    assert_eq!(column(&prod_db, prod_row).await, Some(sealed.clone()));

    // A wrong source key: an error naming the row, and nothing written anywhere.
    let before = store_snapshot(&staging_db).await;
    let r = copy(to_staging(&fernet_key()), &app_to_app);
    r.assert_code(2).assert_stderr_has("credentials row 1");
    assert_eq!(
        store_snapshot(&staging_db).await,
        before,
        "nothing half-written"
    );
    // The same table of the same database is refused.
    copy(
        to_staging(&staging_key),
        &[
            "--store-config",
            staging_cfg,
            "--from-store-config",
            staging_cfg,
            "--from-database-url",
            &staging_db.url,
            "--credential-id",
            "1",
        ],
    )
    .assert_code(2)
    .assert_stderr_has("this run's own table");

    // Application -> oauthtest's own store; a second copy warns.
    run(native_db.cmd(), &["--mode", "init"], None).assert_code(0);
    let to_native = || {
        let mut c = native_db.cmd();
        c.env("PROD_APP_KEY", &prod_key)
            .env("OAUTHTEST_ENCRYPTION_KEY", &native_key);
        c
    };
    let args = [
        "--from-store-config",
        prod_cfg,
        "--from-database-url",
        prod_db.url.as_str(),
        "--credential-id",
        "1",
    ];
    let r = copy(to_native(), &args);
    r.assert_code(0);
    let v = r.json();
    assert_eq!(v["id"], 1, "{v}");
    assert_eq!(v["user_id"], 7);
    assert_eq!(v["name"], "My test account");
    assert_eq!(v["copied_before"], serde_json::json!([]));
    let again = copy(to_native(), &args);
    again.assert_code(0);
    assert_eq!(
        again.json()["copied_before"],
        serde_json::json!([1]),
        "{again}"
    );
    let doctor = run(to_native(), &["--mode", "doctor", "--format", "json"], None);
    let found = doctor.json();
    let creds = found["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "credentials")
        .unwrap()
        .clone();
    assert_eq!(creds["status"], "pass", "{creds}");
    assert!(
        creds["detail"].as_str().unwrap().starts_with("2 of 2"),
        "{creds}"
    );

    // oauthtest's own store -> application: the mapped fields, sealed the application's way.
    let mut c = to_staging(&prod_key);
    c.env("OAUTHTEST_FROM_ENCRYPTION_KEY", &native_key);
    let r = copy(
        c,
        &[
            "--store-config",
            staging_cfg,
            "--from-database-url",
            &native_db.url,
            "--credential-id",
            "1",
        ],
    );
    r.assert_code(0);
    assert_eq!(r.json()["id"], "2", "{r}");
    let opened = staging.open(&stored("2").await);
    assert_eq!(opened["access_token"], PLANTED_ACCESS, "{opened}");
    assert_eq!(opened["refresh_token"], PLANTED_REFRESH);
    assert_eq!(opened["client_id"], fastapi_payload()["client_id"]);
    assert_eq!(
        column(&staging_db, "SELECT name FROM credentials WHERE id = 2")
            .await
            .as_deref(),
        Some("My test account")
    );
}

on_both_backends!(
    copy_brings_an_n8n_row_written_by_crypto_js_into_another_n8n_sealed_with_its_key,
    copy_brings_an_n8n_row_written_by_crypto_js_into_another_n8n_sealed_with_its_key
);
async fn copy_brings_an_n8n_row_written_by_crypto_js_into_another_n8n_sealed_with_its_key(
    prod_db: TestDb,
) {
    if !available(Lib::CryptoJs) {
        return;
    }
    let (prod_pass, staging_pass) = ("n8n-production-key-3Qk9", "n8n-staging-key-8Wd2");
    let prod = App::new(Lib::CryptoJs, &[("N8N_ENCRYPTION_KEY", prod_pass)]);
    let staging = App::new(Lib::CryptoJs, &[("N8N_ENCRYPTION_KEY", staging_pass)]);
    n8n_table(&prod_db).await;
    let staging_db = another(&prod_db).await;
    n8n_table(&staging_db).await;
    sql(
        &prod_db,
        &format!(
            "INSERT INTO credentials_entity (id, name, data, type) VALUES ('cred-1', 'Gmail prod', {}, 'gmailOAuth2')",
            lit(&prod.seal(&n8n_payload()))
        ),
    )
    .await;
    let prod_cfg = staging_db.write(
        "prod.toml",
        "preset = \"n8n\"\n[store]\nkey_env = \"PROD_N8N_KEY\"\n",
    );
    let staging_cfg = staging_db.write("staging.toml", "preset = \"n8n\"\n");
    let mut c = staging_db.cmd();
    c.env("PROD_N8N_KEY", prod_pass)
        .env("N8N_ENCRYPTION_KEY", staging_pass);
    let r = copy(
        c,
        &[
            "--store-config",
            staging_cfg.to_str().unwrap(),
            "--from-store-config",
            prod_cfg.to_str().unwrap(),
            "--from-database-url",
            &prod_db.url,
            "--credential-id",
            "cred-1",
        ],
    );
    r.assert_code(0);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let stored = column(
        &staging_db,
        &format!(
            "SELECT data FROM credentials_entity WHERE id = {}",
            lit(&id)
        ),
    )
    .await
    .unwrap();
    let opened = staging.open(&stored);
    let (got, want) = (&opened["oauthTokenData"], &n8n_payload()["oauthTokenData"]);
    for field in [
        "access_token",
        "refresh_token",
        "scope",
        "id_token",
        "callbackQueryString",
    ] {
        assert_eq!(
            got[field], want[field],
            "n8n reads {field} with its key: {opened}"
        );
    }
    assert_eq!(opened["clientId"], n8n_payload()["clientId"]);
    assert_eq!(opened["sendAdditionalBodyProperties"], false);
    assert!(
        prod.run("decrypt", &stored).is_err(),
        "not with production's"
    );
}
