//! The docs cannot drift: every scenario example, every command and every documented interface
//! in README.md, docs/ and the CI templates is run or checked here against the real thing.

use crate::support::*;
use clap::CommandFactory;
use oauthtest::cli::Cli;
use oauthtest::scenarios::run::{run_scenario, RunOptions};
use std::collections::BTreeSet;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// The documents that show commands, examples or interfaces.
const DOCS: &[&str] = &[
    "README.md",
    "docs/json.md",
    "docs/scenarios.md",
    "docs/ci/github-actions.yml",
    "docs/ci/gitlab-ci.yml",
    "docs/container.md",
    "python/README.md",
];

/// Modes whose documented commands run here for real (no credential from Google, no network).
const RUNNABLE: &[&str] = &[
    "keygen", "init", "import", "list", "mock", "mock-all", "doctor", "rekey",
];

/// Whether a documented command can run here: a runnable mode, or a staging mode's preview
/// (`real --dry-run` without tokeninfo, `scrub` without `--yes`), which reaches no network.
fn runnable(c: &Shown) -> bool {
    let has = |flag: &str| c.args.iter().any(|a| a == flag);
    match c.mode() {
        // Runs the user's own refresh code: parsed, not run.
        Some(_) if has("--target-cmd") => false,
        Some("real") => has("--dry-run") && !has("--check-token"),
        Some("scrub") => !has("--yes"),
        Some(mode) => RUNNABLE.contains(&mode),
        None => false,
    }
}

fn read(doc: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fenced code block of a Markdown file.
struct Block {
    lang: String,
    /// The line of its opening fence.
    line: usize,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            match open.take() {
                Some(block) => out.push(block),
                None => {
                    open = Some(Block {
                        lang: lang.trim().to_owned(),
                        line: i + 1,
                        text: String::new(),
                    })
                }
            }
        } else if let Some(block) = open.as_mut() {
            block.text.push_str(line);
            block.text.push('\n');
        }
    }
    assert!(open.is_none(), "an unclosed code fence");
    out
}

/// Inline code spans outside fenced blocks, with their line numbers.
fn inline_spans(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            for (n, span) in line.split('`').enumerate() {
                if n % 2 == 1 {
                    out.push((i + 1, span.to_owned()));
                }
            }
        }
    }
    out
}

/// A command shown in the docs: where, the program (`oauthtest` or the checklist script), any
/// `VAR=value` before it, and its arguments with placeholders filled in.
#[derive(Debug, Clone)]
struct Shown {
    at: String,
    program: &'static str,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Shown {
    fn mode(&self) -> Option<&str> {
        let at = self.args.iter().position(|a| a == "--mode")?;
        self.args.get(at + 1).map(String::as_str)
    }
}

const CHECKLIST: &str = "scripts/pre_deploy_check.sh";

/// The command in `line`, if it shows one: `oauthtest …` (also as `target/release/oauthtest`,
/// `cargo run … -- …`, inside `$( … )`, after `VAR=value`), or the checklist script.
fn command_in(at: String, line: &str) -> Option<Shown> {
    let line = line
        .trim()
        .trim_start_matches("$ ")
        .trim_start_matches("- ");
    let (program, start, skip) = if let Some(i) = line.find(CHECKLIST) {
        (CHECKLIST, i, CHECKLIST.len())
    } else if let Some(i) = line.find("oauthtest --") {
        ("oauthtest", i, "oauthtest".len())
    } else if let Some(i) = line
        .find("cargo run")
        .and_then(|c| line[c..].find(" -- --").map(|d| c + d))
    {
        ("oauthtest", i, " --".len())
    } else {
        return None;
    };
    let inside_subshell = line[..start].contains("$(");
    let mut rest = &line[start + skip..];
    for end in [" #", " |", " &&", ";"] {
        if let Some(i) = rest.find(end) {
            rest = &rest[..i];
        }
    }
    if inside_subshell {
        rest = rest.trim_end().trim_end_matches(')');
    }
    let env = line[..start]
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, v)| {
            k.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !v.starts_with("$(")
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let words = shlex::split(rest).unwrap_or_else(|| panic!("{at}: cannot split {rest:?}"));
    let args = words
        .iter()
        .filter(|w| !matches!(w.as_str(), "..." | "…"))
        .map(|w| {
            let w = w.trim_start_matches('[').trim_end_matches(']');
            match w {
                "N" => "1",
                "N,M" => "1,2",
                "URL" => "sqlite://other.db",
                "PATH" => "token.json",
                "FILE" => "report.xml",
                "FILE.html" => "report.html",
                "DIR" => "scenarios",
                "NAME" => "success",
                "ID" => "0123456789abcdef",
                "LEVEL" => "info",
                "P" | "J" | "C" => "2",
                other => other,
            }
            .to_owned()
        })
        .collect();
    Some(Shown {
        at,
        program,
        env,
        args,
    })
}

/// Every command the docs show: in shell blocks every line, in output blocks the `$ ` lines, in
/// prose the code spans, in the CI templates every line.
fn shown_commands() -> Vec<Shown> {
    let mut out = Vec::new();
    for doc in DOCS {
        let text = read(doc);
        if doc.ends_with(".yml") {
            for (i, line) in text.lines().enumerate() {
                if !line.trim_start().starts_with('#') {
                    out.extend(command_in(format!("{doc}:{}", i + 1), line));
                }
            }
            continue;
        }
        for block in blocks(&text) {
            for (i, line) in block.text.lines().enumerate() {
                let shell = matches!(block.lang.as_str(), "bash" | "sh" | "console");
                if shell || line.starts_with("$ ") {
                    out.extend(command_in(format!("{doc}:{}", block.line + 1 + i), line));
                }
            }
        }
        for (line, span) in inline_spans(&text) {
            if span.starts_with("oauthtest ") || span.starts_with(CHECKLIST) {
                out.extend(command_in(format!("{doc}:{line}"), &span));
            }
        }
    }
    out
}

#[test]
fn every_oauthtest_command_in_the_docs_parses_and_validates() {
    let commands: Vec<_> = shown_commands()
        .into_iter()
        .filter(|c| c.program == "oauthtest")
        .collect();
    let mut broken = Vec::new();
    for c in &commands {
        let argv = std::iter::once("oauthtest".to_owned()).chain(c.args.iter().cloned());
        // As the binary parses: a flag the mode does not take is refused too.
        match Cli::try_parse_args(argv) {
            Ok(oauthtest::cli::Parsed::Run(cli)) => {
                if let Err(e) = oauthtest::settings::Settings::from_cli(&cli) {
                    broken.push(format!("{}: {:?}: {e}", c.at, c.args));
                }
            }
            Ok(oauthtest::cli::Parsed::Help(_)) => {}
            Err(e) => broken.push(format!("{}: {:?}: {}", c.at, c.args, e.kind())),
        }
    }
    assert!(
        broken.is_empty(),
        "commands in the docs that do not parse:\n{}",
        broken.join("\n")
    );
    // The extraction itself must not silently find nothing.
    let modes: BTreeSet<_> = commands.iter().filter_map(Shown::mode).collect();
    for mode in [
        "keygen",
        "import",
        "list",
        "mock",
        "mock-all",
        "worker-sim",
        "rekey",
        "real",
        "force-expire",
        "copy",
        "scrub",
        "doctor",
    ] {
        assert!(
            modes.contains(mode),
            "no command shows --mode {mode}; found {modes:?}"
        );
    }
    assert!(
        commands
            .iter()
            .any(|c| c.at.starts_with("docs/ci/github-actions.yml")),
        "the GitHub template's commands are checked"
    );
    assert!(commands
        .iter()
        .any(|c| c.at.starts_with("docs/ci/gitlab-ci.yml")));
}

#[test]
fn every_checklist_command_in_the_docs_uses_options_its_help_lists() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHECKLIST);
    let mut c = std::process::Command::new("bash");
    c.arg(&script).current_dir(dir.path());
    let help = run(c, &["--help"], None);
    help.assert_code(0);
    let commands: Vec<_> = shown_commands()
        .into_iter()
        .filter(|c| c.program == CHECKLIST)
        .collect();
    assert!(commands.len() >= 4, "{commands:?}");
    for c in &commands {
        for arg in &c.args {
            // `${VAR:+--credential-id "$VAR"}` in the templates: the option inside counts.
            if let Some(i) = arg.find("--") {
                let option: String = arg[i..]
                    .chars()
                    .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
                    .collect();
                assert!(
                    help.stdout.contains(&option),
                    "{}: {option} is not in the checklist's --help",
                    c.at
                );
            }
        }
    }
}

/// What must match between documented and real output: the same words, except that runs of 12+
/// hex digits (fingerprints, key ids) read `H` and durations in milliseconds read `N`, with
/// whitespace collapsed (column widths follow the values).
fn normalize(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let all_digits = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            if word.strip_suffix("ms").is_some_and(all_digits)
                || (all_digits(word) && words.get(i + 1).is_some_and(|n| n.starts_with("ms")))
            {
                return "N".to_owned();
            }
            let chars: Vec<char> = word.chars().collect();
            let mut out = String::new();
            let mut i = 0;
            while i < chars.len() {
                let hex = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || ('a'..='f').contains(*c))
                    .count();
                if hex >= 12 {
                    out.push('H');
                    i += hex;
                } else {
                    out.extend(&chars[i..i + hex.max(1)]);
                    i += hex.max(1);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a documented oauthtest command in `dir` with `env`; returns the run.
fn run_shown(dir: &Path, env: &[(String, String)], c: &Shown) -> Run {
    let mut cmd = oauthtest_cmd(dir);
    cmd.env("GOOGLE_CLIENT_ID", "cid.apps.googleusercontent.com")
        .env("GOOGLE_CLIENT_SECRET", PLANTED_CLIENT_SECRET);
    for (k, v) in env.iter().chain(&c.env) {
        cmd.env(k, v);
    }
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    run(cmd, &args, None)
}

#[test]
fn the_readme_shell_blocks_run_for_real_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.json"), playground_json()).unwrap();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut ran = Vec::new();
    for block in blocks(&read("README.md"))
        .into_iter()
        .filter(|b| b.lang == "bash")
    {
        for (i, line) in block.text.lines().enumerate() {
            let at = format!("README.md:{}", block.line + 1 + i);
            let line = line.trim();
            if line.is_empty() || line.starts_with("cargo test") {
                continue;
            }
            let c = command_in(at.clone(), line)
                .unwrap_or_else(|| panic!("{at}: a command this test does not know: {line}"));
            assert_eq!(c.program, "oauthtest", "{at}");
            let mode = c
                .mode()
                .unwrap_or_else(|| panic!("{at}: no --mode"))
                .to_owned();
            assert!(runnable(&c), "{at}: --mode {mode} cannot run here");
            let r = run_shown(dir.path(), &env, &c);
            assert_eq!(r.code, 0, "{at}: {line}\n{r}");
            assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[]);
            if let Some(var) = line
                .strip_prefix("export ")
                .and_then(|l| l.split_once("=$("))
                .map(|(var, _)| var.to_owned())
            {
                env.push((var, r.stdout.trim().to_owned()));
            }
            ran.push(mode);
        }
    }
    assert!(ran.iter().any(|m| m == "doctor"), "{ran:?}");
    assert!(
        ran.iter().filter(|m| *m == "mock-all").count() >= 2,
        "{ran:?}"
    );
    let xml = std::fs::read_to_string(dir.path().join("mock-all.xml")).unwrap();
    assert!(xml.contains("<testsuite"));
}

#[test]
fn documented_output_matches_what_the_commands_print() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.json"), playground_json()).unwrap();
    let env = vec![("OAUTHTEST_ENCRYPTION_KEY".to_owned(), new_key(dir.path()))];
    let mut compared = Vec::new();
    for doc in ["README.md", "docs/scenarios.md", "docs/json.md"] {
        for block in blocks(&read(doc)).into_iter().filter(|b| b.lang == "text") {
            let mut lines = block.text.lines();
            let Some(first) = lines.next().filter(|l| l.starts_with("$ ")) else {
                continue;
            };
            let at = format!("{doc}:{}", block.line + 1);
            let c = command_in(at.clone(), first).unwrap();
            let documented: Vec<_> = lines.collect();
            if c.program == CHECKLIST {
                check_checklist_output(&at, &documented);
                continue;
            }
            if !runnable(&c) || documented.contains(&"...") {
                continue; // needs Google, or an excerpt: parsed by the test above
            }
            let r = run_shown(dir.path(), &env, &c);
            let real: Vec<_> = r.stdout.lines().map(normalize).collect();
            let shown: Vec<_> = documented.iter().map(|l| normalize(l)).collect();
            assert_eq!(shown, real, "{at}: the documented output differs\n{r}");
            compared.push(c.mode().unwrap().to_owned());
        }
    }
    for mode in ["import", "list", "mock", "doctor", "rekey", "real", "scrub"] {
        assert!(
            compared.iter().any(|m| m == mode),
            "no {mode} output compared: {compared:?}"
        );
    }
}

/// The documented checklist output: every line a check's verdict, then a summary that counts them.
fn check_checklist_output(at: &str, lines: &[&str]) {
    let (summary, checks) = lines.split_last().expect("output");
    let count = |verdict: &str| checks.iter().filter(|l| l.starts_with(verdict)).count();
    for line in checks {
        let known = [
            "tool ",
            "tests",
            "build",
            "mock-all",
            "migrations",
            "configuration",
            "credential",
            "secrets",
        ];
        let rest = line
            .strip_prefix("PASS  ")
            .or_else(|| line.strip_prefix("FAIL  "))
            .or_else(|| line.strip_prefix("SKIP  "))
            .or_else(|| line.strip_prefix("      "))
            .unwrap_or_else(|| panic!("{at}: not a checklist line: {line}"));
        assert!(
            line.starts_with("      ") || known.iter().any(|k| rest.starts_with(k)),
            "{at}: unknown check: {line}"
        );
    }
    assert_eq!(
        *summary,
        format!(
            "pre-deploy: {} passed, {} failed, {} skipped",
            count("PASS"),
            count("FAIL"),
            count("SKIP")
        ),
        "{at}"
    );
}

#[test]
fn every_toml_example_in_the_docs_is_a_scenario_that_passes() {
    let mut examples = 0;
    for doc in ["README.md", "docs/scenarios.md"] {
        for block in blocks(&read(doc)).into_iter().filter(|b| b.lang == "toml") {
            let at = format!("{doc}:{}", block.line);
            let scenario = oauthtest::scenarios::parse(&at, &block.text)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            let rt = tokio::runtime::Runtime::new().unwrap();
            let result = rt.block_on(run_scenario(&scenario, &RunOptions::default()));
            assert!(
                result.passed,
                "{at}: {}\n  {}",
                result.failures.join("; "),
                result.steps.join("\n  ")
            );
            examples += 1;
        }
    }
    assert!(examples >= 2, "no scenario example found");
}

#[test]
fn the_every_field_scenario_example_uses_every_field_the_table_documents() {
    let doc = read("docs/scenarios.md");
    let example = blocks(&doc)
        .into_iter()
        .find(|b| b.lang == "toml" && b.text.contains("every_field"))
        .expect("the every-field example")
        .text;
    let value: toml::Table = example.parse().unwrap();
    let mut documented = 0;
    for row in doc.lines().filter_map(|l| l.strip_prefix("| `")) {
        let cell = row.split(" |").next().unwrap().replace('`', "");
        // `[section] field`, `[[token]]`, or a step's `field` (under [[token]]).
        let (section, field) = match cell.split_once("] ") {
            Some((section, field)) => (Some(section.trim_start_matches('[')), field.to_owned()),
            None => (None, cell.clone()),
        };
        let present = match (section, field.as_str()) {
            (_, f) if f.starts_with("[[") => value.contains_key(f.trim_matches(['[', ']'])),
            (Some(section), field) => value.get(section).and_then(|t| t.get(field)).is_some(),
            (None, field) => {
                value.contains_key(field)
                    || value["token"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|step| step.get(field).is_some())
            }
        };
        assert!(
            present,
            "docs/scenarios.md documents {cell}, the every-field example lacks it"
        );
        documented += 1;
    }
    assert!(documented >= 26, "{documented} fields found in the tables");
}

/// The key sets of `documented`, recursively (arrays by their first element), must be those of
/// `real`: a documented field that does not exist, or a real one left out, fails.
fn same_shape(at: &str, path: &str, documented: &serde_json::Value, real: &serde_json::Value) {
    use serde_json::Value;
    match (documented, real) {
        (Value::Object(d), Value::Object(r)) => {
            let dk: BTreeSet<_> = d.keys().collect();
            let rk: BTreeSet<_> = r.keys().collect();
            assert_eq!(
                dk, rk,
                "{at}: the fields of {path} differ from the real output"
            );
            for (k, v) in d {
                same_shape(at, &format!("{path}.{k}"), v, &r[k]);
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            if let (Some(d), Some(r)) = (d.first(), r.first()) {
                same_shape(at, &format!("{path}[]"), d, r);
            }
        }
        _ => {}
    }
}

#[test]
fn the_json_examples_have_exactly_the_fields_each_mode_prints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.json"), playground_json()).unwrap();
    let env = vec![("OAUTHTEST_ENCRYPTION_KEY".to_owned(), new_key(dir.path()))];
    let json = |args: &[&str]| {
        let c = Shown {
            at: String::new(),
            program: "oauthtest",
            env: Vec::new(),
            args: args
                .iter()
                .map(|s| s.to_string())
                .chain(["--format".into(), "json".into()])
                .collect(),
        };
        run_shown(dir.path(), &env, &c).json()
    };
    json(&["--mode", "import", "--file", "token.json"]);
    let mut checked = Vec::new();
    for block in blocks(&read("docs/json.md"))
        .into_iter()
        .filter(|b| b.lang == "json")
    {
        let at = format!("docs/json.md:{}", block.line);
        let documented: serde_json::Value =
            serde_json::from_str(&block.text).unwrap_or_else(|e| panic!("{at}: not JSON: {e}"));
        // The error object has no mode: a run that fails makes one.
        let mode = documented["mode"].as_str().unwrap_or("error").to_owned();
        let real = match mode.as_str() {
            "error" => json(&["--mode", "real"]),
            "init" => json(&["--mode", "init"]),
            "list" => json(&["--mode", "list", "--credential-id", "1"]),
            "real" => json(&["--mode", "real", "--credential-id", "1", "--dry-run"]),
            "force-expire" => json(&[
                "--mode",
                "force-expire",
                "--credential-id",
                "1",
                "--no-refresh",
            ]),
            "scrub" => json(&["--mode", "scrub"]),
            "worker-sim" => json(&["--mode", "worker-sim", "--jobs", "20"]),
            "mock-all" => json(&["--mode", "mock-all"]),
            "doctor" => json(&["--mode", "doctor"]),
            other => panic!("{at}: no real run for mode {other}"),
        };
        same_shape(&at, &mode, &documented, &real);
        checked.push(mode);
    }
    assert_eq!(
        checked,
        [
            "error",
            "init",
            "list",
            "real",
            "force-expire",
            "scrub",
            "worker-sim",
            "mock-all",
            "doctor"
        ]
    );
}

#[test]
fn the_documented_credential_payload_is_what_the_store_reads() {
    let block = blocks(&read("README.md"))
        .into_iter()
        .find(|b| b.lang == "json" && b.text.contains("refresh_token"))
        .expect("the payload example");
    let c = oauthtest::credential::GoogleCredential::from_payload(block.text.as_bytes())
        .unwrap_or_else(|e| panic!("README.md:{}: {e}", block.line));
    assert!(c.access_token.is_some() && c.refresh_token.is_some() && c.client_secret.is_some());
    assert!(c.expiry.is_some());
}

#[test]
fn every_flag_mode_variable_and_exit_code_is_documented_in_the_readme() {
    let readme = read("README.md");
    let command = Cli::command();
    for arg in command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
    {
        if let Some(long) = arg.get_long() {
            let short = arg.get_short().map(|s| format!("`-{s}`"));
            assert!(
                readme.contains(&format!("--{long}")) || short.is_some_and(|s| readme.contains(&s)),
                "README.md never mentions --{long}"
            );
        }
        if let Some(var) = arg.get_env() {
            let var = var.to_string_lossy();
            assert!(
                readme.contains(&format!("`{var}`")),
                "README.md never mentions {var}"
            );
        }
    }
    for var in [
        oauthtest::settings::KEY_VAR,
        oauthtest::settings::OLD_KEYS_VAR,
        oauthtest::settings::FROM_KEY_VAR,
        oauthtest::settings::PRODUCTION_KEY_VAR,
    ] {
        assert!(
            readme.contains(&format!("`{var}`")),
            "README.md never mentions {var}"
        );
    }
    use clap::ValueEnum;
    for mode in oauthtest::cli::Mode::value_variants() {
        assert!(
            readme.contains(&format!("--mode {}", mode.name())),
            "README.md never shows --mode {}",
            mode.name()
        );
    }
    let table: BTreeSet<_> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split_once(" |"))
        .filter_map(|(code, _)| code.parse::<u8>().ok())
        .collect();
    let help: BTreeSet<_> = oauthtest::exit_code::HELP_TABLE
        .lines()
        .filter_map(|l| l.trim().split_once("  "))
        .filter_map(|(code, _)| code.parse::<u8>().ok())
        .collect();
    assert_eq!(table, help, "README's exit code table and --help differ");
}

#[test]
fn the_ci_templates_are_valid_yaml_running_mock_all_with_junit_and_the_checklist_before_deploy() {
    let load = |doc: &str| {
        YamlLoader::load_from_str(&read(doc))
            .unwrap_or_else(|e| panic!("{doc}: not YAML: {e}"))
            .remove(0)
    };
    let steps_text = |steps: &Yaml| -> String {
        steps
            .as_vec()
            .map(|v| {
                v.iter()
                    .filter_map(|s| s["run"].as_str().or(s.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };

    let gh = load("docs/ci/github-actions.yml");
    assert!(
        !gh["on"]["pull_request"].is_badvalue(),
        "GitHub: runs on pull requests"
    );
    let jobs = &gh["jobs"];
    let mock_all = steps_text(&jobs["mock-all"]["steps"]);
    assert!(
        mock_all.contains("oauthtest --mode mock-all --report mock-all.xml"),
        "{mock_all}"
    );
    let reported: Vec<_> = jobs["mock-all"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["with"]["report_paths"].as_str())
        .collect();
    assert_eq!(
        reported,
        ["mock-all.xml"],
        "GitHub: the JUnit report is shown"
    );
    assert!(steps_text(&jobs["pre-deploy"]["steps"]).contains(CHECKLIST));
    assert_eq!(jobs["deploy"]["needs"].as_str(), Some("pre-deploy"));

    let gl = load("docs/ci/gitlab-ci.yml");
    let mr = &gl["oauthtest-mock-all"];
    assert!(steps_text(&mr["script"]).contains("oauthtest --mode mock-all --report mock-all.xml"));
    assert_eq!(
        mr["artifacts"]["reports"]["junit"].as_str(),
        Some("mock-all.xml")
    );
    assert!(
        mr["rules"].as_vec().unwrap().iter().any(|r| r["if"]
            .as_str()
            .is_some_and(|s| s.contains("merge_request_event"))),
        "GitLab: runs on merge requests"
    );
    assert!(steps_text(&gl["oauthtest-pre-deploy"]["script"]).contains(CHECKLIST));
    assert_eq!(
        gl["deploy"]["needs"][0].as_str(),
        Some("oauthtest-pre-deploy")
    );

    // This project's own CI runs the same mock-all command.
    let ci = read(".ci/run");
    assert!(ci.contains("--mode mock-all --report"), "{ci}");
    assert!(ci.contains("cargo test --workspace --locked"), "{ci}");
}

/// The paths the docs name (`scripts/…`, `docs/…`, `benches/…`, `examples/…`) that exist in the
/// repository, and the ones that do not.
fn named_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["scripts/", "docs/", "benches/", "examples/"] {
        for (at, _) in text.match_indices(prefix) {
            if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '/' || c == '.') {
                continue; // part of a longer path or a URL
            }
            let path: String = text[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'))
                .collect();
            let path = path.trim_end_matches('.').to_owned();
            if path.len() > prefix.len() {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn every_script_and_document_the_docs_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = BTreeSet::new();
    for doc in DOCS {
        for path in named_paths(&read(doc)) {
            assert!(
                root.join(&path).exists(),
                "{doc} names {path}, which does not exist"
            );
            checked.insert(path);
        }
    }
    // The benchmark script and its report are among them, so a rename cannot leave them dangling.
    for path in [
        "scripts/bench.sh",
        "docs/benchmarks.md",
        "benches/crypto.rs",
    ] {
        assert!(
            checked.contains(path),
            "README.md no longer names {path}: {checked:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The CI templates' script steps, run for real in a scratch application repository.

/// An application's repository as the templates expect it: a git repository holding the
/// checklist script (copied in, as their header says), with staging's settings and a store that
/// holds one credential outside it. `tools` holds a stand-in `cargo` that installs this build's
/// binary for `cargo install --locked --root R --git G --rev V oauthtest` and logs each call.
struct ScratchApp {
    repo: tempfile::TempDir,
    outside: tempfile::TempDir,
    settings: Vec<(String, String)>,
}

impl ScratchApp {
    fn new() -> Self {
        let repo = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(repo.path())
                .status()
                .unwrap();
            assert!(ok.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(repo.path().join("app.py"), "print('my application')\n").unwrap();
        std::fs::create_dir(repo.path().join("scripts")).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(CHECKLIST),
            repo.path().join(CHECKLIST),
        )
        .unwrap();
        git(&["add", "."]);

        let store = outside.path().join("staging.db");
        let key = new_key(outside.path());
        std::fs::write(outside.path().join("token.json"), playground_json()).unwrap();
        let mut import = oauthtest_cmd(outside.path());
        import
            .env("DATABASE_URL", format!("sqlite://{}", store.display()))
            .env("OAUTHTEST_ENCRYPTION_KEY", &key)
            .env("GOOGLE_CLIENT_ID", "cid.apps.googleusercontent.com")
            .env("GOOGLE_CLIENT_SECRET", PLANTED_CLIENT_SECRET);
        run(import, &["--mode", "import", "--file", "token.json"], None).assert_code(0);

        let tools = outside.path().join("tools");
        std::fs::create_dir(&tools).unwrap();
        let fake_cargo = tools.join("cargo");
        std::fs::write(
            &fake_cargo,
            format!(
                "#!/bin/sh\n\
                 echo \"$*\" >> '{log}'\n\
                 [ \"$1 $2 $3\" = 'install --locked --root' ] || {{ echo \"cargo: unexpected $*\" >&2; exit 101; }}\n\
                 mkdir -p \"$4/bin\" && cp '{bin}' \"$4/bin/oauthtest\"\n",
                log = outside.path().join("cargo.log").display(),
                bin = env!("CARGO_BIN_EXE_oauthtest"),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_cargo, std::fs::Permissions::from_mode(0o755)).unwrap();

        let settings = [
            (
                "STAGING_DATABASE_URL",
                format!("sqlite://{}", store.display()),
            ),
            ("STAGING_OAUTHTEST_ENCRYPTION_KEY", key),
            ("PRODUCTION_OAUTHTEST_KEY_ID", "0123456789abcdef".to_owned()),
            (
                "STAGING_GOOGLE_CLIENT_ID",
                "cid.apps.googleusercontent.com".to_owned(),
            ),
            (
                "STAGING_GOOGLE_CLIENT_SECRET",
                PLANTED_CLIENT_SECRET.to_owned(),
            ),
            ("STAGING_TEST_CREDENTIAL_ID", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            repo,
            outside,
            settings,
        }
    }

    fn setting(&self, name: &str) -> String {
        self.settings
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the scratch app has no setting {name}"))
    }

    /// The `cargo` calls the stand-in saw.
    fn cargo_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.outside.path().join("cargo.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `script` as a CI runner runs a step: bash failing on the first error, in the repository,
    /// with `env` and a PATH of the system's tools, the stand-in cargo and `extra_path` only (so
    /// an oauthtest binary can come only from the template's own install step).
    fn sh(&self, script: &str, env: &[(String, String)], extra_path: &[String]) -> Run {
        let mut c = std::process::Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(self.repo.path())
            .env_clear();
        let mut path: Vec<String> = extra_path.to_vec();
        path.push(self.outside.path().join("tools").display().to_string());
        path.push("/usr/local/bin:/usr/bin:/bin".to_owned());
        c.env("PATH", path.join(":"))
            .env("HOME", self.outside.path())
            .envs(env.iter().map(|(k, v)| (k, v)));
        run(c, &[], None)
    }
}

/// A GitHub Actions expression in the template, as the runner would give it.
fn github_expression(app: &ScratchApp, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("a closed ${{ }}") + start;
        let expr = rest[start + 3..end].trim();
        let value = if expr == "github.workspace" {
            app.repo.path().display().to_string()
        } else if let Some(name) = expr
            .strip_prefix("secrets.")
            .or_else(|| expr.strip_prefix("vars."))
        {
            app.setting(name)
        } else {
            panic!("docs/ci/github-actions.yml: an expression this test does not know: {expr}");
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn yaml_env(map: &Yaml, resolve: &dyn Fn(&str) -> String) -> Vec<(String, String)> {
    map.as_hash()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("a variable that is not a string: {other:?}"),
                    };
                    (k.as_str().unwrap().to_owned(), resolve(&value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs every `run:` step of a GitHub job in `app`, as the runner would (checkout: the repository
/// is there; cache: `.oauthtest/` stays between calls; the other actions only read files).
/// Returns the last step's run, or the first that failed, with its name.
fn run_github_job(app: &ScratchApp, job: &str) -> (String, Run) {
    let workflow = YamlLoader::load_from_str(&read("docs/ci/github-actions.yml"))
        .unwrap()
        .remove(0);
    let resolve = |s: &str| github_expression(app, s);
    let mut env = yaml_env(&workflow["env"], &resolve);
    env.extend(yaml_env(&workflow["jobs"][job]["env"], &resolve));
    let github_path = app.outside.path().join(format!("github_path_{job}"));
    std::fs::write(&github_path, "").unwrap();
    env.push(("GITHUB_PATH".into(), github_path.display().to_string()));
    env.push(("CI".into(), "true".into()));
    let mut last = None;
    for step in workflow["jobs"][job]["steps"].as_vec().expect("steps") {
        if let Some(action) = step["uses"].as_str() {
            let known = [
                "actions/checkout@",
                "actions/cache@",
                "actions/upload-artifact@",
                "mikepenz/action-junit-report@",
            ];
            assert!(
                known.iter().any(|k| action.starts_with(k)),
                "GitHub job {job}: an action this test does not know: {action}"
            );
            continue;
        }
        let script = resolve(step["run"].as_str().expect("a run step"));
        let name = step["name"].as_str().unwrap_or(&script).to_owned();
        let added: Vec<String> = std::fs::read_to_string(&github_path)
            .unwrap()
            .lines()
            .rev()
            .map(str::to_owned)
            .collect();
        let r = app.sh(&script, &env, &added);
        let failed = r.code != 0;
        last = Some((name, r));
        if failed {
            break;
        }
    }
    last.expect("the job has run steps")
}

/// Runs a GitLab job's `before_script` and `script` (its own or from what it `extends`) in one
/// shell, as the runner does, with the file's and the job's variables and staging's settings as
/// CI/CD variables.
fn run_gitlab_job(app: &ScratchApp, job: &str) -> Run {
    let pipeline = YamlLoader::load_from_str(&read("docs/ci/gitlab-ci.yml"))
        .unwrap()
        .remove(0);
    let own = &pipeline[job];
    let base = own["extends"]
        .as_str()
        .map(|name| &pipeline[name])
        .unwrap_or(&Yaml::BadValue);
    let pick = |key: &str| {
        if own[key].is_badvalue() {
            &base[key]
        } else {
            &own[key]
        }
    };
    let plain = |s: &str| s.to_owned();
    let mut env = yaml_env(&pipeline["variables"], &plain);
    env.extend(yaml_env(&base["variables"], &plain));
    env.extend(yaml_env(&own["variables"], &plain));
    env.push(("CI".into(), "true".into()));
    env.push((
        "CI_PROJECT_DIR".into(),
        app.repo.path().display().to_string(),
    ));
    for (variable, setting) in [
        ("DATABASE_URL", "STAGING_DATABASE_URL"),
        (
            "OAUTHTEST_ENCRYPTION_KEY",
            "STAGING_OAUTHTEST_ENCRYPTION_KEY",
        ),
        ("OAUTHTEST_PRODUCTION_KEY_ID", "PRODUCTION_OAUTHTEST_KEY_ID"),
        ("GOOGLE_CLIENT_ID", "STAGING_GOOGLE_CLIENT_ID"),
        ("GOOGLE_CLIENT_SECRET", "STAGING_GOOGLE_CLIENT_SECRET"),
        ("STAGING_TEST_CREDENTIAL_ID", "STAGING_TEST_CREDENTIAL_ID"),
    ] {
        env.push((variable.into(), app.setting(setting)));
    }
    let lines = |y: &Yaml| -> Vec<String> {
        y.as_vec()
            .map(|v| v.iter().map(|l| l.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let mut script = lines(pick("before_script"));
    script.extend(lines(pick("script")));
    assert!(!script.is_empty(), "GitLab job {job} has no script");
    app.sh(&script.join("\n"), &env, &[])
}

#[track_caller]
fn assert_checklist_passed(r: &Run) {
    r.assert_code(0);
    let summary = r.stdout.lines().last().unwrap_or("");
    assert!(
        summary.starts_with("pre-deploy: ") && summary.contains(" 0 failed"),
        "{r}"
    );
    for line in [
        "PASS  mock-all",
        "PASS  migrations",
        "PASS  configuration",
        "PASS  credential 1",
        "PASS  secrets",
        "SKIP  tests",
    ] {
        assert!(
            r.stdout.lines().any(|l| l.starts_with(line)),
            "no {line:?}\n{r}"
        );
    }
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[]);
}

#[test]
fn the_github_template_installs_once_then_runs_mock_all_and_the_checklist_in_an_app_repository() {
    let app = ScratchApp::new();
    let (step, r) = run_github_job(&app, "mock-all");
    assert_eq!(step, "Every scenario against the mock", "{r}");
    r.assert_code(0);
    let xml = std::fs::read_to_string(app.repo.path().join("mock-all.xml")).unwrap();
    assert!(xml.contains("<testsuite") && !xml.contains("<failure"));
    let calls = app.cargo_calls();
    assert_eq!(calls.len(), 1, "installed once: {calls:?}");
    assert!(
        calls[0].starts_with("install --locked --root ")
            && calls[0]
                .ends_with(" --git https://github.com/your-org/oauthtest --rev v0.1.0 oauthtest"),
        "{calls:?}"
    );

    // The next job finds the cached binary: no second install.
    let (step, r) = run_github_job(&app, "pre-deploy");
    assert_eq!(step, "Pre-deploy checklist", "{r}");
    assert_checklist_passed(&r);
    assert_eq!(app.cargo_calls().len(), 1, "{:?}", app.cargo_calls());
}

#[test]
fn the_gitlab_template_installs_once_then_runs_mock_all_and_the_checklist_in_an_app_repository() {
    let app = ScratchApp::new();
    let r = run_gitlab_job(&app, "oauthtest-mock-all");
    r.assert_code(0);
    assert!(
        r.stdout.contains("27 passed, 0 failed") || r.stdout.contains(" 0 failed"),
        "{r}"
    );
    assert!(app.repo.path().join("mock-all.xml").exists());
    assert_eq!(app.cargo_calls().len(), 1, "{:?}", app.cargo_calls());

    let r = run_gitlab_job(&app, "oauthtest-pre-deploy");
    assert_checklist_passed(&r);
    assert_eq!(app.cargo_calls().len(), 1, "{:?}", app.cargo_calls());
}

#[test]
fn the_templates_checklist_step_fails_the_job_on_a_wrong_key_or_a_committed_secret() {
    let mut app = ScratchApp::new();
    // Wrong staging key: every stored credential fails to decrypt.
    let good_key = app.setting("STAGING_OAUTHTEST_ENCRYPTION_KEY");
    let wrong = new_key(app.outside.path());
    for (k, v) in app.settings.iter_mut() {
        if k == "STAGING_OAUTHTEST_ENCRYPTION_KEY" {
            *v = wrong.clone();
        }
    }
    let (step, r) = run_github_job(&app, "pre-deploy");
    assert_eq!(step, "Pre-deploy checklist", "{r}");
    r.assert_code(1);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("FAIL  configuration")),
        "{r}"
    );
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&wrong, &good_key]);

    // The right key, but the application committed a refresh token.
    for (k, v) in app.settings.iter_mut() {
        if k == "STAGING_OAUTHTEST_ENCRYPTION_KEY" {
            *v = good_key.clone();
        }
    }
    let leaked = format!("1//0{}", "gLx9-Qz_7".repeat(8));
    std::fs::write(
        app.repo.path().join("settings.py"),
        format!("RT = '{leaked}'\n"),
    )
    .unwrap();
    let r = run_gitlab_job(&app, "oauthtest-pre-deploy");
    r.assert_code(1);
    assert!(
        r.stdout.contains("FAIL  secrets")
            && r.stdout.contains("settings.py:1: Google refresh token"),
        "{r}"
    );
    assert!(
        !r.stdout.contains(".oauthtest/"),
        "the cached binary is not scanned\n{r}"
    );
    assert!(
        !format!("{}{}", r.stdout, r.stderr).contains(&leaked),
        "{r}"
    );
}

#[test]
fn the_copied_checklist_without_an_installed_oauthtest_fails_saying_how_to_install_it() {
    let app = ScratchApp::new();
    let ci = [("CI".to_owned(), "true".to_owned())];
    let r = app.sh(
        "scripts/pre_deploy_check.sh --report mock-all.xml",
        &ci,
        &[],
    );
    r.assert_code(1);
    assert!(
        r.stdout.contains(
            "FAIL  tool oauthtest: not on PATH and OAUTHTEST_BIN is not set; install it with \
             cargo install --locked --git"
        ),
        "{r}"
    );
    assert!(r.stdout.contains("FAIL  mock-all: not run"), "{r}");
    assert!(
        app.cargo_calls().is_empty(),
        "outside an oauthtest checkout nothing is built: {:?}",
        app.cargo_calls()
    );
}
