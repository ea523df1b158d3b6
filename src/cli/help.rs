//! `--help`, per mode: `oauthtest --help` lists the modes with a line each and the options every
//! mode takes; `oauthtest --mode MODE --help` shows what that mode takes, with examples.

use super::{Cli, Mode, COMMON_ARGS};
use crate::exit_code::HELP_TABLE;
use clap::{CommandFactory as _, ValueEnum as _};
use std::ffi::OsString;

/// `Some(true)` for `--help`, `Some(false)` for `-h`, `None` when neither was asked for.
/// Arguments after `--` are not options.
pub fn asked_for(args: &[OsString]) -> Option<bool> {
    let mut asked = None;
    for a in args.iter().skip(1) {
        match a.to_str() {
            Some("--") => break,
            Some("--help") => asked = Some(true),
            Some("-h") => asked = asked.or(Some(false)),
            _ => {}
        }
    }
    asked
}

/// The mode named by `--mode NAME` or `--mode=NAME`, if it is one.
pub fn mode_in(args: &[OsString]) -> Option<Mode> {
    let mut iter = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(a) = iter.next() {
        let value = match a.strip_prefix("--mode") {
            Some("") => iter.next(),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(name) = value {
            return Mode::from_str(name, false).ok();
        }
    }
    None
}

/// One line per mode, for `oauthtest --help`.
fn summary(mode: Mode) -> &'static str {
    match mode {
        Mode::Init => "create the store and apply migrations (changes no credential)",
        Mode::List => "the stored Google credentials and their state, never a secret",
        Mode::Import => "encrypt and store a credential from a JSON file (--file)",
        Mode::Keygen => "print a new random encryption key",
        Mode::Rekey => "re-encrypt every stored credential with the current key",
        Mode::Mock => "one scenario against the embedded mock Google, step by step",
        Mode::MockAll => "every scenario against embedded mocks: the pre-deploy check",
        Mode::WorkerSim => "many concurrent workers on the same credentials (alias celery-sim)",
        Mode::Real => "refresh one stored credential (--credential-id N) and prove it works",
        Mode::ForceExpire => "expire a stored credential, refresh it, prove the new token works",
        Mode::Copy => "copy one credential from another store, re-encrypted with this one's key",
        Mode::Scrub => "wipe every credential's tokens except --keep ids (staging after a dump)",
        Mode::Doctor => "check configuration and store without changing anything",
        Mode::Cleanup => "remove the temporary rows a killed mock or worker-sim run left",
        Mode::Serve => "the mock Google standing alone, for applications in any language",
    }
}

/// A few typical command lines for `--mode MODE --help`.
fn examples(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Init => &[
            "oauthtest --mode init",
            "DATABASE_URL=postgres://app@db/staging oauthtest --mode init",
        ],
        Mode::List => &[
            "oauthtest --mode list",
            "oauthtest --mode list --credential-id 3 --format json",
        ],
        Mode::Import => &[
            "oauthtest --mode import --file token.json --name \"Support inbox\"",
            "cat authorized_user.json | oauthtest --mode import --file -",
        ],
        Mode::Keygen => &["export OAUTHTEST_ENCRYPTION_KEY=\"$(oauthtest --mode keygen)\""],
        Mode::Rekey => &[
            "oauthtest --mode rekey --dry-run",
            "OAUTHTEST_OLD_ENCRYPTION_KEYS=\"$OLD_KEY\" oauthtest --mode rekey",
        ],
        Mode::Mock => &[
            "oauthtest --mode mock --scenario invalid_grant",
            "oauthtest --mode mock --scenario rotation --target-cmd 'python refresh.py'",
        ],
        Mode::MockAll => &[
            "oauthtest --mode mock-all --report mock-all.xml",
            "oauthtest --mode mock-all --target-cmd 'python refresh.py' --format json",
        ],
        Mode::WorkerSim => &[
            "oauthtest --mode worker-sim --workers 12 --jobs 1000",
            "oauthtest --mode celery-sim --scenario rotation --processes 3 --report sim.html",
            "oauthtest --mode celery-sim --store-config oauthtest.toml --concurrency 12 --jobs 1000 \\\n    --target-cmd 'python -m refapp worker --concurrency 1 --queue \"$OAUTHTEST_RUN_ID\"' \\\n    --enqueue-cmd 'python -m refapp enqueue --queue \"$OAUTHTEST_RUN_ID\" --credential-ids \"$OAUTHTEST_CREDENTIAL_IDS\" --jobs \"$OAUTHTEST_JOBS\"'",
            "oauthtest --mode worker-sim --token-url http://127.0.0.1:8080/token --credential-id 3",
            "oauthtest --mode worker-sim --store-config oauthtest.toml --token-url http://127.0.0.1:8080/token --credential-ids 1,2",
        ],
        Mode::Real => &[
            "oauthtest --mode real --credential-id 3 --dry-run --check-token",
            "oauthtest --mode real --credential-id 3",
        ],
        Mode::ForceExpire => &[
            "oauthtest --mode force-expire --credential-id 3",
            "oauthtest --mode force-expire --credential-id 3 --no-refresh",
            "oauthtest --mode force-expire --store-config oauthtest.toml --credential-id 3 --trigger-cmd 'python -m myapp.refresh'",
        ],
        Mode::Copy => &[
            "oauthtest --mode copy --credential-id 7 --from-database-url \"$PROD_DATABASE_URL\"",
            "oauthtest --mode copy --from-store-config prod.toml --store-config staging.toml --credential-id 7 --from-database-url \"$PROD_DATABASE_URL\"",
        ],
        Mode::Scrub => &[
            "oauthtest --mode scrub --keep 3,4",
            "oauthtest --mode scrub --keep 3,4 --yes",
        ],
        Mode::Cleanup => &[
            "oauthtest --mode cleanup",
            "oauthtest --mode cleanup --yes",
            "oauthtest --mode cleanup --run 3f2a9c1d --yes",
        ],
        Mode::Doctor => &[
            "oauthtest --mode doctor",
            "oauthtest --mode doctor --check-endpoint --production-key-id 0123456789abcdef",
        ],
        Mode::Serve => &[
            "oauthtest --mode serve --port 8080",
            "oauthtest --mode serve --port 0 --scenario rotation --format json",
        ],
    }
}

/// The help text: for `mode`, what it takes; without one, the modes and the common options.
/// `long` is `--help` (full descriptions); otherwise `-h` (one line an option).
pub fn render(mode: Option<Mode>, long: bool) -> String {
    let keep: Vec<&str> = COMMON_ARGS
        .iter()
        .chain(mode.map_or(&[][..], Mode::takes))
        .copied()
        .collect();
    let mut cmd = Cli::command();
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids.iter().filter(|id| !keep.contains(&id.as_str())) {
        cmd = cmd.mut_arg(id, |a| a.hide(true));
    }
    cmd = cmd.mut_arg("mode", |a| a.hide_possible_values(true));
    cmd = match mode {
        None => {
            let mut index =
                String::from("Modes (oauthtest --mode MODE --help shows what one takes):\n");
            for m in Mode::ALL {
                index.push_str(&format!("  {:<13} {}\n", m.name(), summary(m)));
            }
            cmd.after_help(format!("{index}\n{HELP_TABLE}"))
                .after_long_help(format!("{index}\n{HELP_TABLE}"))
        }
        Some(m) => {
            let about = m
                .to_possible_value()
                .and_then(|v| v.get_help().map(ToString::to_string))
                .unwrap_or_else(|| summary(m).to_owned());
            let mut after = String::from("Examples:\n");
            for e in examples(m) {
                after.push_str(&format!("  {e}\n"));
            }
            let after = format!("{after}\n{HELP_TABLE}");
            cmd.about(format!("--mode {}: {}", m.name(), summary(m)))
                .long_about(format!("--mode {}: {about}", m.name()))
                .override_usage(format!("oauthtest --mode {} [OPTIONS]", m.name()))
                .after_help(after.clone())
                .after_long_help(after)
        }
    };
    let rendered = if long {
        cmd.render_long_help()
    } else {
        cmd.render_help()
    };
    rendered.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn help_for_a_mode_shows_its_options_and_not_another_modes() {
        let text = render(Some(Mode::List), true);
        assert!(text.contains("--credential-id"), "{text}");
        assert!(
            text.contains("oauthtest --mode list --credential-id 3"),
            "{text}"
        );
        assert!(!text.contains("--workers"), "{text}");
        assert!(!text.contains("--target-cmd"), "{text}");
        assert!(text.contains("Exit codes:"), "{text}");
    }

    #[test]
    fn top_level_help_lists_every_mode_with_a_line() {
        let text = render(None, true);
        for m in Mode::ALL {
            assert!(
                text.contains(&format!("  {:<13} ", m.name())),
                "{} missing\n{text}",
                m.name()
            );
        }
        assert!(!text.contains("--from-key-file"), "{text}");
    }

    #[test]
    fn help_is_found_with_either_spelling_of_mode_and_not_after_a_double_dash() {
        assert_eq!(
            mode_in(&args(&["x", "--mode", "real", "--help"])),
            Some(Mode::Real)
        );
        assert_eq!(
            mode_in(&args(&["x", "--mode=serve", "-h"])),
            Some(Mode::Serve)
        );
        assert_eq!(
            mode_in(&args(&["x", "--mode", "celery-sim"])),
            Some(Mode::WorkerSim)
        );
        assert_eq!(asked_for(&args(&["x", "--", "--help"])), None);
        assert_eq!(asked_for(&args(&["x", "-h"])), Some(false));
    }
}
