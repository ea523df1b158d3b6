use super::*;

fn parse(text: &str) -> Result<StoreConfig, AppStoreError> {
    StoreConfig::parse(text, "oauthtest.toml")
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_n8n_preset_describes_n8n_and_is_overridable_key_by_key() {
    let c = parse("preset = \"n8n\"\n[store]\ntable = \"app.credentials_entity\"\n").unwrap();
    assert_eq!(c.table.to_string(), "app.credentials_entity");
    assert_eq!(c.data_column.as_str(), "data");
    assert_eq!(c.cipher, CipherKind::OpensslAes256Cbc);
    assert_eq!(c.key, KeySource::Env("N8N_ENCRYPTION_KEY".into()));
    assert_eq!(c.payload.access_token, "/oauthTokenData/access_token");
    assert_eq!(
        c.payload.expires_in.as_deref(),
        Some("/oauthTokenData/expires_in")
    );
    assert!(c.google_types.iter().any(|t| t == "gmailOAuth2"));
    assert_eq!(c.new_id, NewIdPolicy::Uuid);
}

#[test]
fn an_empty_string_unsets_what_a_preset_sets() {
    let c = parse(
        "[store]\npreset = \"fernet\"\nuser_column = \"\"\nkey_file = \"/run/key\"\n[store.payload]\nclient_secret = \"\"\nscopes = \"/scope\"\n",
    )
    .unwrap();
    assert!(c.user_column.is_none());
    assert!(c.payload.client_secret.is_none());
    assert_eq!(c.payload.scopes.as_deref(), Some("/scope"));
    assert_eq!(c.payload.expiry.as_deref(), Some("/expiry"));
    assert_eq!(c.key, KeySource::File("/run/key".into()));
}

#[test]
fn the_issue_example_parses() {
    let c = parse(
        r#"
[store]
table = "credentials"
id_column = "id"
data_column = "encrypted_data"
type_column = "type"
google_types = ["gmailOAuth2", "googleDriveOAuth2"]
name_column = "name"
user_column = "user_id"
updated_at_column = "updated_at"
cipher = "fernet"
key_env = "APP_ENCRYPTION_KEY"
old_keys_env = "APP_OLD_KEYS"

[store.payload]
access_token = "/oauthTokenData/access_token"
refresh_token = "/oauthTokenData/refresh_token"
expiry = "/oauthTokenData/expiry_date"
expiry_format = "unix_ms"
client_id = "/clientId"
client_secret = "/clientSecret"
scopes = "/oauthTokenData/scope"

[store.reconnect]
column = "status"
value = "needs_reconnect"
"#,
    )
    .unwrap();
    assert_eq!(c.payload.expiry_format, ExpiryFormat::UnixMs);
    assert!(c.list_needs_key());
    assert!(matches!(c.reconnect.unwrap().at, ReconnectWhere::Column(_)));
}

#[test]
fn every_error_names_the_file_and_the_key() {
    let base = "[store]\ntable = \"t\"\ndata_column = \"d\"\ncipher = \"plain\"\n[store.payload]\naccess_token = \"/a\"\nrefresh_token = \"/r\"\n";
    assert!(parse(base).is_ok());
    for (text, key, hint) in [
        (
            base.replace("cipher = \"plain\"", "cipher = \"rot13\""),
            "store.cipher",
            "rot13",
        ),
        (
            base.replace("data_column = \"d\"\n", ""),
            "store.data_column",
            "required",
        ),
        (
            base.replace("table = \"t\"", "table = \"t\"\ntabel = \"x\""),
            "(file)",
            "tabel",
        ),
        (
            base.replace("refresh_token = \"/r\"", "refresh_token = \"r\""),
            "store.payload.refresh_token",
            "JSON pointer",
        ),
        (
            base.replace("cipher = \"plain\"", "cipher = \"fernet\""),
            "store.key_env",
            "needs a key",
        ),
        (
            format!("{base}expiry = \"/e\"\n"),
            "store.payload.expiry_format",
            "required",
        ),
        (
            format!("{base}expiry = \"/e\"\nexpiry_format = \"iso\"\n"),
            "store.payload.expiry_format",
            "iso",
        ),
        (
            base.replace(
                "cipher = \"plain\"",
                "cipher = \"plain\"\ngcm_nonce_len = 12",
            ),
            "store.cipher",
            "aes-256-gcm only",
        ),
        (
            base.replace("cipher = \"plain\"", "cipher = \"command\""),
            "store.encrypt_cmd",
            "required",
        ),
        (
            base.replace(
                "cipher = \"plain\"",
                "cipher = \"plain\"\ntype_column = \"type\"",
            ),
            "store.google_types",
            "required",
        ),
        (
            base.replace("table = \"t\"", "table = \"a.b.c\""),
            "store.table",
            "more than one dot",
        ),
        (
            base.replace("data_column = \"d\"", "data_column = \"d\\\"x\""),
            "store.data_column",
            "double quote",
        ),
        (
            format!("{base}[store.reconnect]\ncolumn = \"s\"\npointer = \"/s\"\nvalue = 1\n"),
            "store.reconnect",
            "not both",
        ),
        (
            format!("{base}[store.reconnect]\ncolumn = \"s\"\n"),
            "store.reconnect.value",
            "required",
        ),
        (
            format!("{base}expires_in = \"/e\"\n"),
            "store.payload.expires_in",
            "updated_at_column",
        ),
        ("preset = \"rails\"\n".to_owned(), "preset", "rails"),
    ] {
        let e = err(&text);
        assert!(
            e.starts_with(&format!("oauthtest.toml: {key}: ")),
            "{key}: {e}"
        );
        assert!(e.contains(hint), "{key}: {e}");
    }
}

#[test]
fn a_syntax_error_says_where() {
    let e = err("[store]\ntable = \"t\"\ncipher = plain\n");
    assert!(e.contains("line 3"), "{e}");
}

#[test]
fn native_defaults_to_oauthtests_own_key_variables() {
    let c = parse("[store]\ntable = \"oauthtest_credentials\"\ndata_column = \"encrypted_data\"\ncipher = \"native\"\n[store.payload]\naccess_token = \"/access_token\"\nrefresh_token = \"/refresh_token\"\n").unwrap();
    assert_eq!(c.key, KeySource::Env("OAUTHTEST_ENCRYPTION_KEY".into()));
    assert_eq!(
        c.old_keys_env.as_deref(),
        Some("OAUTHTEST_OLD_ENCRYPTION_KEYS")
    );
}

#[test]
fn discovery_prefers_the_flag_then_the_working_directory_then_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, table: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!("preset = \"n8n\"\n[store]\ntable = \"{table}\"\n"),
        )
        .unwrap();
        p
    };
    let flagged = write("flag.toml", "from_flag");
    let env_file = write("env.toml", "from_env");
    let env_path = env_file.display().to_string();
    let env = move |name: &str| (name == CONFIG_ENV).then(|| env_path.clone());
    let none = |_: &str| None;
    assert!(StoreConfig::discover(None, dir.path(), &none)
        .unwrap()
        .is_none());
    let found = StoreConfig::discover(None, dir.path(), &env)
        .unwrap()
        .unwrap();
    assert_eq!(found.table.to_string(), "from_env");
    write(CONFIG_FILE_NAME, "from_cwd");
    let found = StoreConfig::discover(None, dir.path(), &env)
        .unwrap()
        .unwrap();
    assert_eq!(found.table.to_string(), "from_cwd");
    let found = StoreConfig::discover(Some(&flagged), dir.path(), &env)
        .unwrap()
        .unwrap();
    assert_eq!(found.table.to_string(), "from_flag");
    let missing = dir.path().join("nope.toml");
    let e = StoreConfig::discover(Some(&missing), dir.path(), &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.toml") && e.contains("cannot read"), "{e}");
}

#[test]
fn an_expiry_given_replaces_the_presets_expires_in() {
    let c = parse("preset = \"n8n\"\n[store.payload]\nexpiry = \"/oauthTokenData/expiry_date\"\nexpiry_format = \"unix_ms\"\n").unwrap();
    assert!(c.payload.expires_in.is_none());
    assert_eq!(c.payload.expiry_format, ExpiryFormat::UnixMs);
    let c = parse("preset = \"fernet\"\n[store.payload]\nexpires_in = \"/expires_in\"\n").unwrap();
    assert!(c.payload.expiry.is_none());
}
