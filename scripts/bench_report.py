#!/usr/bin/env python3
"""The reading half of scripts/bench.sh: turns the raw results a run leaves in its results
directory (hyperfine, wrk, worker-sim --format json and criterion files) into the lines it
prints, the SVG plot and docs/benchmarks.md. The lines printed during the run and the report come
from the same formatting functions here, so the published figures are the printed ones.

Standard library only, except `plot`, which needs matplotlib (bench.sh installs it into a venv).

    bench_report.py section PART RESULTS          a part's section of the report, as it will read
    bench_report.py header worker-sim             the scaling table's header
    bench_report.py worker-sim-row FILE BACKEND   one row of the scaling table
    bench_report.py celery-sim-row FILE           one row of the celery-sim table
    bench_report.py time RUNS OUT.json -- CMD...  hyperfine-shaped timings, when hyperfine is missing
    bench_report.py maxrss -- CMD...              peak resident memory of CMD in KB
    bench_report.py plot RESULTS OUT.svg          the scaling plot
    bench_report.py render RESULTS OUT.md         the report, also printed to stdout
"""

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# --- reading results ---------------------------------------------------------------------------


def load(path):
    with open(path) as f:
        return json.load(f)


def tsv(path):
    """Lines of `key<TAB>value` as (key, value) pairs, in order; none when the file is absent."""
    if not path.exists():
        return []
    return [tuple(line.split("\t", 1)) for line in path.read_text().splitlines() if "\t" in line]


def worker_sim_runs(results):
    """Every worker-sim run, as (backend, report), sorted by backend, workers, jobs."""
    runs = []
    for path in sorted((results / "worker_sim").glob("*.json")):
        backend = path.stem.split("_", 1)[0]
        runs.append((backend, load(path)))
    return sorted(runs, key=lambda r: (r[0] != "sqlite", r[1]["workers"], r[1]["jobs"]))


# --- formatting (used for the lines printed during the run and for the report) -----------------

WORKER_SIM_HEADER = (
    "| backend | workers | jobs | credentials | jobs/s | token requests | per expiry "
    "| p99 ms | peak MB | invariants |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"
)


def worker_sim_row(backend, d):
    held = all(i["held"] for i in d["invariants"])
    per_expiry = d["refreshes_per_expiry"]
    peak = d["peak_memory_kb"]
    return "| %s | %d | %d | %d | %.0f | %d | %s | %.1f | %s | %s |" % (
        "SQLite" if backend == "sqlite" else "PostgreSQL",
        d["workers"],
        d["jobs"],
        d["credentials"],
        d["jobs_per_second"],
        d["token_requests"],
        "—" if per_expiry is None else "%.2f" % per_expiry,
        d["latency_ms"]["p99"],
        "—" if peak is None else "%.1f" % (peak / 1024),
        "all held" if held else "BROKEN: " + ", ".join(i["name"] for i in d["invariants"] if not i["held"]),
    )


SERVE_HEADER = (
    "| server | req/s | p50 ms | p90 ms | p99 ms | max ms | requests | errors |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|"
)


def serve_row(name, d):
    ms = lambda us: "%.2f" % (us / 1000)  # noqa: E731
    return "| %s | %.0f | %s | %s | %s | %s | %d | %d |" % (
        name,
        d["requests"] / (d["duration_us"] / 1e6),
        ms(d["p50_us"]),
        ms(d["p90_us"]),
        ms(d["p99_us"]),
        ms(d["max_us"]),
        d["requests"],
        d["errors"],
    )


def serve_rps(d):
    return d["requests"] / (d["duration_us"] / 1e6)


def seconds(s):
    if s < 0.1:
        return "%.1f ms" % (s * 1000)
    return "%.0f ms" % (s * 1000) if s < 10 else "%.1f s" % s


HYPERFINE_HEADER = "| command | mean | ± σ | median | min | max | runs |\n|---|--:|--:|--:|--:|--:|--:|"


def hyperfine_row(label, r):
    return "| %s | %s | %s | %s | %s | %s | %d |" % (
        label,
        seconds(r["mean"]),
        seconds(r["stddev"] or 0),
        seconds(r["median"]),
        seconds(r["min"]),
        seconds(r["max"]),
        len(r["times"]),
    )


def nanos(ns):
    return "%.2f µs" % (ns / 1000) if ns >= 1000 else "%.0f ns" % ns


CRYPTO_HEADER = "| operation | time | 95% interval | throughput |\n|---|--:|--:|--:|"


def crypto_row(name, estimates, benchmark):
    """criterion's own figure: the slope of its linear sampling, or the mean when it has none."""
    typical = estimates.get("slope") or estimates["mean"]
    ci = typical["confidence_interval"]
    size = (benchmark.get("throughput") or {}).get("Bytes")
    return "| %s | %s | %s – %s | %s |" % (
        name,
        nanos(typical["point_estimate"]),
        nanos(ci["lower_bound"]),
        nanos(ci["upper_bound"]),
        "—" if not size else "%.1f MiB/s" % (size / typical["point_estimate"] * 1e9 / 2**20),
    )


# --- small measuring helpers -------------------------------------------------------------------


def cmd_time(argv):
    """Times a command RUNS times after one warm-up, in hyperfine's --export-json shape."""
    runs, out, cmd = int(argv[0]), argv[1], argv[3:]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    result = {
        "command": " ".join(cmd),
        "mean": statistics.mean(times),
        "stddev": statistics.stdev(times) if len(times) > 1 else None,
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "times": times,
    }
    Path(out).write_text(json.dumps({"results": [result], "timer": "python"}))


def cmd_maxrss(argv):
    subprocess.run(argv[1:], check=True, stdout=subprocess.DEVNULL)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


# --- the plot ----------------------------------------------------------------------------------


def cmd_plot(argv):
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    results, out = Path(argv[0]), argv[1]
    runs = worker_sim_runs(results)
    if not runs:
        sys.exit("no worker-sim results to plot in %s" % results)
    # Reproducible SVG: no timestamp, fixed ids; text kept as text (small, searchable).
    plt.rcParams["svg.hashsalt"] = "oauthtest-bench"
    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["font.size"] = 9
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    colors = {"sqlite": "tab:blue", "postgres": "tab:orange"}
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    markers = ["o", "s", "^", "D", "v", "P"]
    metrics = [
        ("jobs/s", lambda d: d["jobs_per_second"]),
        ("peak memory (MB)", lambda d: (d["peak_memory_kb"] or 0) / 1024),
    ]
    axes_by = [("workers", "jobs"), ("jobs", "workers")]
    for row, (ylabel, value) in enumerate(metrics):
        for col, (x, series) in enumerate(axes_by):
            ax = axes[row][col]
            for backend in ("sqlite", "postgres"):
                mine = [d for b, d in runs if b == backend]
                for n, s in enumerate(sorted({d[series] for d in mine})):
                    points = sorted((d[x], value(d)) for d in mine if d[series] == s)
                    ax.plot(
                        [p[0] for p in points],
                        [p[1] for p in points],
                        color=colors[backend],
                        marker=markers[n % len(markers)],
                        linestyle="-" if backend == "sqlite" else "--",
                        label="%s, %s %s" % (names[backend], format(s, ","), series),
                    )
            ax.set_xscale("log")
            ax.set_xlabel(x + " (log scale)")
            ax.set_ylabel(ylabel)
            ax.set_ylim(bottom=0)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title("%s against %s" % (ylabel.split(" (")[0], x))
            ax.legend(fontsize=7)
    fig.suptitle("oauthtest worker-sim scaling (credentials = workers)")
    fig.tight_layout()
    fig.savefig(out, format="svg", metadata={"Date": None})
    print("wrote %s" % out)


# --- the report --------------------------------------------------------------------------------


def machine():
    def first(path, prefix):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip('"')
        except OSError:
            pass
        return "unknown"

    mem_kb = first("/proc/meminfo", "MemTotal")
    ram = "%.1f GiB" % (int(mem_kb.split()[0]) / 1024 / 1024) if mem_kb != "unknown" else "unknown"
    return [
        ("CPU", first("/proc/cpuinfo", "model name")),
        ("cores (nproc)", str(os.cpu_count())),
        ("RAM", ram),
        ("kernel", "%s %s" % (platform.system(), platform.release())),
        ("OS", first("/etc/os-release", "PRETTY_NAME=")),
    ]


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def section_machine(results, settings):
    commit = git("rev-parse", "--short=12", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    started = float(settings.get("started", time.time()))
    lines = ["## Machine and run", "", "| | |\n|---|---|"]
    lines += ["| %s | %s |" % kv for kv in machine()]
    lines += [
        "| date | %s |" % datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "| commit | %s |" % (commit or "unknown"),
        "| load average (1, 5, 15 min) at start → end | %s → %s |" % (settings.get("load_start", "?"), settings.get("load_end", "?")),
        "| benchmarks took (after the build) | %.1f min |" % ((float(settings.get("finished", time.time())) - started) / 60),
    ]
    lines += ["| %s | %s |" % kv for kv in tsv(results / "versions.tsv")]
    skipped = tsv(results / "skipped.tsv")
    if skipped:
        lines += ["", "Skipped in this run:", ""]
        lines += ["- **%s**: %s" % kv for kv in skipped]
    return lines


def section_mock_all(results, settings):
    path = results / "mock_all.json"
    if not path.exists():
        return []
    timings = load(path)
    r = timings["results"][0]
    scenarios = load(results / "mock_all_scenarios.json")
    return [
        "## mock-all: every shipped scenario",
        "",
        "`oauthtest --mode mock-all --format json` (%d scenarios, %d passed, each with its own mock "
        "server and throwaway SQLite store), wall time over %d runs after warm-up (%s); peak memory "
        "%.1f MB."
        % (
            scenarios["passed"] + scenarios["failed"],
            scenarios["passed"],
            len(r["times"]),
            "Python timing loop" if timings.get("timer") == "python" else "hyperfine",
            int(settings.get("mock_all_maxrss_kb", 0)) / 1024,
        ),
        "",
        HYPERFINE_HEADER,
        hyperfine_row("mock-all", r),
    ]


def section_serve(results, settings):
    ours, theirs = results / "serve_oauthtest.json", results / "serve_oauth2-mock-server.json"
    if not ours.exists():
        return []
    lines = [
        "## serve: the refresh_token grant, against npm's oauth2-mock-server",
        "",
        "wrk `-t%s -c%s -d%s` (after a %s warm-up) POSTing the same refresh_token grant (form body, "
        "client credentials in the body) to each server's `/token`, one after the other in this "
        "run; wrk runs on the same machine, so these compare the two servers rather than "
        "measure capacity."
        % (settings["serve_threads"], settings["serve_connections"], settings["serve_duration"], settings["serve_warmup"]),
        "",
        SERVE_HEADER,
        serve_row("oauthtest serve", load(ours)),
    ]
    if theirs.exists():
        lines += [
            serve_row("oauth2-mock-server %s" % settings.get("oauth2_mock_server_version", ""), load(theirs)),
            "",
            "**oauthtest serve / oauth2-mock-server throughput: %.1f×**; p99 latency, oauth2-mock-server / "
            "oauthtest serve: %.1f×."
            % (serve_rps(load(ours)) / serve_rps(load(theirs)), load(theirs)["p99_us"] / load(ours)["p99_us"]),
        ]
    return lines


def section_worker_sim(results, settings, svg=None):
    runs = worker_sim_runs(results)
    if not runs:
        return []
    lines = [
        "## worker-sim: scaling on SQLite and PostgreSQL",
        "",
        "`oauthtest --mode worker-sim --workers W --jobs J --credentials W --token-ttl-secs %s "
        "--format json`: every credential starts expired and its access token lives %s s, so "
        "tokens expire again during the longer runs. *Per expiry* is token requests per "
        "credential per expiry and must be 1.00; *peak MB* is the process's peak resident memory."
        % (settings["sim_ttl"], settings["sim_ttl"]),
        "",
        WORKER_SIM_HEADER,
    ]
    lines += [worker_sim_row(backend, d) for backend, d in runs]
    if svg is not None and svg.exists() and settings.get("plot") == "written":
        lines += [
            "",
            "![jobs/s and peak memory against workers and against jobs, SQLite and PostgreSQL](%s)" % svg.name,
            "",
            "Plotted with matplotlib %s: lines join runs with the same jobs (left) or workers "
            "(right); solid SQLite, dashed PostgreSQL." % settings.get("matplotlib", ""),
        ]
    return lines


def celery_sim_row(d):
    held = all(i["held"] for i in d["invariants"])
    per_expiry = d["refreshes_per_expiry"]
    return "| %d | %d | %.2f | %.1f | %d | %s | %s |" % (
        d["workers"],
        d["jobs"],
        d["duration_ms"] / 1000,
        d["jobs_per_second"],
        d["token_requests"],
        "—" if per_expiry is None else "%.2f" % per_expiry,
        "all held" if held else "BROKEN: " + ", ".join(i["name"] for i in d["invariants"] if not i["held"]),
    )


CELERY_SIM_HEADER = (
    "| workers | jobs | wall s | jobs/s | token requests | per expiry | invariants |\n"
    "|--:|--:|--:|--:|--:|--:|---|"
)


def section_celery_sim(results, settings):
    runs = sorted(
        (load(p) for p in (results / "celery_sim").glob("*.json")),
        key=lambda d: (d["workers"], d["jobs"]),
    ) if (results / "celery_sim").is_dir() else []
    if not runs:
        return []
    jobs = int(settings.get("celery_jobs", "1000"))
    lines = [
        "## celery-sim --target-cmd: the application's Celery workers",
        "",
        "`oauthtest --mode celery-sim --store-config examples/refapp/oauthtest.toml --concurrency N "
        "--jobs J --credentials 3 --token-ttl-secs 2 --target-cmd 'python3 -m refapp worker "
        "--concurrency 1 …' --enqueue-cmd 'python3 -m refapp enqueue …'`: N real Celery worker "
        "processes of the reference application (Redis broker, SQLite table, Fernet rows), the "
        "jobs sent by its enqueue command, its tokens expiring every 1.5 s. *Wall s* is the whole "
        "run, seeding, start-up and clean-up included; the run with one job per worker is the "
        "start-up cost of N workers.",
        "",
        CELERY_SIM_HEADER,
    ]
    lines += [celery_sim_row(d) for d in runs]
    startup = {d["workers"]: d["duration_ms"] / 1000 for d in runs if d["jobs"] == d["workers"]}
    full = {d["workers"]: d["duration_ms"] / 1000 for d in runs if d["jobs"] == jobs}
    common = sorted(set(startup) & set(full))
    if common:
        lines += [
            "",
            "Start-up (one job per worker) and the %d jobs beyond it: %s." % (
                jobs,
                "; ".join(
                    "N=%d: %.1f s start-up, %.1f s for the jobs" % (n, startup[n], full[n] - startup[n])
                    for n in common
                ),
            ),
        ]
    return lines


def section_crypto(results, settings):
    crypto = results / "crypto"
    if not (crypto / "encrypt" / "estimates.json").exists():
        return []
    size = (load(crypto / "encrypt" / "benchmark.json").get("throughput") or {}).get("Bytes")
    lines = [
        "## Encrypting and decrypting one credential",
        "",
        "criterion (`benches/crypto.rs`%s): a Gmail-sized credential payload (%s bytes of JSON: "
        "access, refresh and ID token, scopes, client) serialized and sealed with AES-256-GCM as "
        "the store writes it, and opened and parsed as it reads it. *Time* is criterion's estimate "
        "(the slope of its linear sampling), with its 95%% confidence interval."
        % (", `--quick`" if settings.get("quick") == "true" else "", size or "?"),
        "",
        CRYPTO_HEADER,
    ]
    for op in ("encrypt", "decrypt"):
        lines.append(crypto_row(op, load(crypto / op / "estimates.json"), load(crypto / op / "benchmark.json")))
    return lines


def section_cold_start(results, settings):
    path = results / "cold_start.json"
    if not path.exists():
        return []
    timings = load(path)
    lines = [
        "## Cold start",
        "",
        "A fresh process each time (%s): `--help` parses the command line only; `--mode list` "
        "opens an empty SQLite store, checks its migrations and prints that it is empty."
        % ("Python timing loop" if timings.get("timer") == "python" else "hyperfine, no shell"),
        "",
        HYPERFINE_HEADER,
    ]
    labels = ["oauthtest --help", "oauthtest --mode list (empty SQLite)"]
    lines += [hyperfine_row(label, r) for label, r in zip(labels, timings["results"])]
    return lines


SECTIONS = {
    "mock-all": section_mock_all,
    "serve": section_serve,
    "worker-sim": section_worker_sim,
    "celery-sim": section_celery_sim,
    "crypto": section_crypto,
    "cold-start": section_cold_start,
}


def cmd_section(argv):
    """Prints one part's section, as the report will show it."""
    results = Path(argv[1])
    print("\n".join(SECTIONS[argv[0]](results, dict(tsv(results / "settings.tsv")))))


def cmd_render(argv):
    results, out = Path(argv[0]), Path(argv[1])
    settings = dict(tsv(results / "settings.tsv"))
    md = [
        "# Benchmarks",
        "",
        "Written by `%s` from exactly the figures it printed; do not edit by hand, re-run the "
        "script. Every comparison is a ratio of two figures measured in the same run on the same "
        "machine." % settings.get("invocation", "scripts/bench.sh"),
        "",
    ]
    md += section_machine(results, settings)
    for name, section in SECTIONS.items():
        lines = section(results, settings, out.with_name(out.stem + "-scaling.svg")) if name == "worker-sim" else section(results, settings)
        if lines:
            md += [""] + lines
    text = "\n".join(md) + "\n"
    # A hand-written "Build cost" section at the end of the old file is kept.
    old = out.read_text() if out.exists() else ""
    if "\n## Build cost\n" in old:
        text += old[old.index("\n## Build cost\n"):]
    out.write_text(text)
    print(text, end="")


COMMANDS = {
    "section": cmd_section,
    "header": lambda a: print({"worker-sim": WORKER_SIM_HEADER}[a[0]]),
    "worker-sim-row": lambda a: print(worker_sim_row(a[1], load(a[0]))),
    "celery-sim-row": lambda a: print(celery_sim_row(load(a[0]))),
    "time": cmd_time,
    "maxrss": cmd_maxrss,
    "plot": cmd_plot,
    "render": cmd_render,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
