//! The token store's unit tests.

use super::*;

fn scopes() -> Vec<String> {
    vec!["openid".to_string()]
}

#[test]
fn fingerprint_is_the_first_twelve_hex_chars_of_sha256() {
    // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    assert_eq!(fingerprint("abc"), "ba7816bf8f01");
}

#[test]
fn issued_tokens_have_googles_prefixes_and_size_limits() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let refresh = store.issue_refresh(grant, None, 0);
    let access = store.issue_access(grant, Arc::from(scopes()), 10);
    assert!(refresh.starts_with("1//"));
    assert!(refresh.len() <= 512);
    assert!(access.starts_with("ya29."));
    assert!(access.len() <= 2048);
    assert_eq!(store.refresh_status(&refresh, 0), TokenStatus::Live);
    assert_eq!(store.access_status(&access, 0), TokenStatus::Live);
    assert_eq!(store.access_status(&access, 10), TokenStatus::Expired);
}

#[test]
fn revoking_an_access_token_revokes_its_whole_grant() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let refresh = store.issue_refresh(grant, None, 0);
    let access = store.issue_access(grant, Arc::from(scopes()), 1_000);
    assert!(store.revoke(&access, 0));
    assert_eq!(store.refresh_status(&refresh, 0), TokenStatus::Revoked);
    assert_eq!(store.access_status(&access, 0), TokenStatus::Revoked);
    assert!(!store.revoke(&refresh, 0), "already revoked");
}

#[test]
fn refresh_tokens_expire_at_their_deadline_and_unknown_tokens_are_unknown() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let refresh = store.issue_refresh(grant, Some(100), 0);
    assert_eq!(store.refresh_status(&refresh, 99), TokenStatus::Live);
    assert_eq!(store.refresh_status(&refresh, 100), TokenStatus::Expired);
    assert_eq!(store.refresh_status("1//nope", 0), TokenStatus::Unknown);
    assert!(
        !store.revoke(&refresh, 100),
        "expired tokens cannot be revoked"
    );
}

#[test]
fn a_grant_keeps_its_newest_access_and_superseded_tokens_only() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let first = store.issue_access(grant, Arc::from(scopes()), 10);
    let mut last = String::new();
    for _ in 0..MAX_TOKENS_PER_GRANT {
        last = store.issue_access(grant, Arc::from(scopes()), 10);
    }
    assert_eq!(store.access.len(), MAX_TOKENS_PER_GRANT);
    assert_eq!(store.access_status(&first, 0), TokenStatus::Unknown);
    assert_eq!(store.access_status(&last, 0), TokenStatus::Live);

    let oldest = store.issue_refresh(grant, None, 0);
    store.supersede(&oldest, 0);
    for _ in 0..MAX_TOKENS_PER_GRANT {
        let next = store.issue_refresh(grant, None, 0);
        store.supersede(&next, 0);
    }
    let live = store.issue_refresh(grant, None, 0);
    assert_eq!(store.refresh.len(), MAX_TOKENS_PER_GRANT + 1);
    assert_eq!(store.refresh_status(&oldest, 0), TokenStatus::Unknown);
    assert_eq!(store.refresh_status(&live, 0), TokenStatus::Live);
}

#[test]
fn a_refresh_token_unused_for_six_months_expires_and_use_restarts_the_clock() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let refresh = store.issue_refresh(grant, None, 0);
    let six_months = ms(UNUSED_REFRESH_TOKEN_TTL);
    assert_eq!(
        store.refresh_status(&refresh, six_months - 1),
        TokenStatus::Live
    );
    store.touch(&refresh, six_months - 1);
    assert_eq!(
        store.refresh_status(&refresh, 2 * six_months - 2),
        TokenStatus::Live
    );
    assert_eq!(
        store.refresh_status(&refresh, 2 * six_months - 1),
        TokenStatus::Expired
    );
}

#[test]
fn the_hundred_and_first_refresh_token_of_an_account_and_client_revokes_the_oldest() {
    let mut store = TokenStore::default();
    let mut tokens = Vec::new();
    for _ in 0..=MAX_LIVE_REFRESH_TOKENS {
        let grant = store.new_grant("c", &scopes(), true);
        tokens.push(store.issue_refresh(grant, None, 0));
        store.limit_live_refresh_tokens(grant, MAX_LIVE_REFRESH_TOKENS);
    }
    let other = store.new_grant("other-client", &scopes(), true);
    let other_token = store.issue_refresh(other, None, 0);
    store.limit_live_refresh_tokens(other, MAX_LIVE_REFRESH_TOKENS);
    assert_eq!(store.refresh_status(&tokens[0], 0), TokenStatus::Revoked);
    assert!(tokens[1..]
        .iter()
        .all(|t| store.refresh_status(t, 0) == TokenStatus::Live));
    assert_eq!(store.refresh_status(&other_token, 0), TokenStatus::Live);
}

#[test]
fn a_superseded_token_is_within_its_grace_window_until_the_window_ends() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let old = store.issue_refresh(grant, None, 0);
    let new = store.rotate(&old, 1_000).expect("live");
    assert_eq!(store.refresh_status(&old, 1_000), TokenStatus::Superseded);
    assert_eq!(store.refresh_status(&new, 1_000), TokenStatus::Live);
    let grace = std::time::Duration::from_millis(500);
    assert!(store.superseded_within(&old, 1_499, grace));
    assert!(!store.superseded_within(&old, 1_500, grace));
    assert!(
        !store.superseded_within(&new, 1_000, grace),
        "not superseded"
    );
    assert!(
        store.rotate(&old, 1_000).is_none(),
        "only a live token rotates"
    );
}

#[test]
fn revoking_a_family_through_an_old_token_kills_the_newest_one_too() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let old = store.issue_refresh(grant, None, 0);
    let access = store.issue_access(grant, Arc::from(scopes()), 10_000);
    let new = store.rotate(&old, 0).expect("live");
    let other = store.new_grant("c", &scopes(), true);
    let unrelated = store.issue_refresh(other, None, 0);
    assert!(store.revoke_family(&old));
    assert_eq!(store.refresh_status(&new, 0), TokenStatus::Revoked);
    assert_eq!(store.access_status(&access, 0), TokenStatus::Revoked);
    assert_eq!(store.refresh_status(&unrelated, 0), TokenStatus::Live);
    assert!(!store.revoke_family(&old), "already revoked");
    assert!(!store.revoke_family("1//never-issued"));
    assert!(!store.superseded_within(&old, 0, std::time::Duration::from_secs(60)));
}

#[test]
fn debug_of_the_store_shows_counts_only() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let refresh = store.issue_refresh(grant, None, 0);
    let printed = format!("{store:?}");
    assert!(!printed.contains(&refresh));
    assert!(printed.contains("refresh_tokens: 1"), "{printed}");
}

#[test]
fn a_delayed_revocation_takes_effect_later_and_kills_the_tokens_issued_meanwhile() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let refresh = store.issue_refresh(grant, None, 0);
    assert!(store.revoke_at(&refresh, 0, 300_000));
    assert_eq!(store.refresh_status(&refresh, 299_999), TokenStatus::Live);
    // Refreshing in the window still works, as at Google.
    let meanwhile = store.issue_access(grant, Arc::from(scopes()), 3_600_000);
    assert_eq!(store.access_status(&meanwhile, 299_999), TokenStatus::Live);
    assert_eq!(
        store.refresh_status(&refresh, 300_000),
        TokenStatus::Revoked
    );
    assert_eq!(
        store.access_status(&meanwhile, 300_000),
        TokenStatus::Revoked
    );
    // A revocation that is due already is the immediate kind.
    let other = store.new_grant("c", &scopes(), true);
    let other_refresh = store.issue_refresh(other, None, 0);
    assert!(store.revoke_at(&other_refresh, 10, 5));
    assert_eq!(
        store.refresh_status(&other_refresh, 10),
        TokenStatus::Revoked
    );
}

#[test]
fn revoking_a_refresh_token_revokes_the_access_tokens_of_its_grant_only() {
    let mut store = TokenStore::default();
    let grant = store.new_grant("c", &scopes(), true);
    let refresh = store.issue_refresh(grant, None, 0);
    let access = store.issue_access(grant, Arc::from(scopes()), 1_000);
    let elsewhere = store.new_grant("c", &scopes(), false);
    let other_access = store.issue_access(elsewhere, Arc::from(scopes()), 1_000);
    assert!(store.revoke(&refresh, 0));
    assert_eq!(store.access_status(&access, 0), TokenStatus::Revoked);
    assert_eq!(store.access_status(&other_access, 0), TokenStatus::Live);
}
