//! `cargo xtask check-report [RUN_DIR]`: renders a run's `eval/report.html`
//! in headless Chromium (Debian's `chromium` package), checks the rendered
//! DOM, and takes a screenshot to look at.
//!
//! The DOM must hold as many `<svg>` charts as the report says it drew
//! (`<meta name="mtl-charts">`, at least one), a section for every task of
//! `eval/metrics.json`, a confusion matrix for every classification task,
//! and no error text (NaN, a browser error page). Chromium is never needed
//! by the build or the tests: this is a manual check, and the checks on the
//! DOM are unit-tested on fixed text.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mtl_core::TaskKind;
use mtl_eval::Metrics;

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

#[derive(clap::Args)]
pub struct Args {
    /// A pipeline's run folder, holding `eval/report.html`.
    #[arg(default_value = "runs/sample")]
    run_dir: PathBuf,
    /// The browser [default: $MTL_CHROMIUM, else /usr/bin/chromium].
    #[arg(long)]
    chromium: Option<PathBuf>,
    /// Where the screenshot goes [default: RUN_DIR/report-check.png].
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Seconds to wait for each browser run.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

pub fn main(args: Args) -> Result<()> {
    let run_dir = absolute(&args.run_dir)?;
    let eval = run_dir.join("eval");
    let report = eval.join(mtl_eval::REPORT_HTML);
    if !report.is_file() {
        bail!(
            "{}: no HTML report (run `cargo xtask run` for this pipeline first)",
            report.display()
        );
    }
    let metrics = Metrics::read(&eval)?;
    let chromium = args
        .chromium
        .or_else(|| std::env::var_os("MTL_CHROMIUM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    if !chromium.is_file() {
        bail!(
            "{}: Chromium not found. Install Debian's package with `apt-get install -y chromium` \
             (or pass --chromium PATH)",
            chromium.display()
        );
    }
    let url = format!("file://{}", report.display());
    let timeout = Duration::from_secs(args.timeout);

    let dom = browser(&chromium, &["--dump-dom", &url], timeout)?;
    let found = check_dom(&dom, &metrics)?;

    let png = match args.screenshot {
        Some(p) => absolute(&p)?,
        None => run_dir.join("report-check.png"),
    };
    // Tall enough for the whole page: the charts mostly stack one a row.
    let height = (700 + 470 * found.charts).min(16_000);
    let _ = std::fs::remove_file(&png);
    browser(
        &chromium,
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size=1100,{height}"),
            "--hide-scrollbars",
            &url,
        ],
        timeout,
    )?;
    if !png.is_file() {
        bail!("Chromium wrote no screenshot at {}", png.display());
    }
    println!(
        "{}: rendered in {}: {} SVG charts ({} training curves, {} confusion matrices), {} task \
         sections, no error text",
        report.display(),
        chromium.display(),
        found.charts,
        found.curves,
        found.confusions,
        found.sections
    );
    println!("screenshot: {}", png.display());
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

/// Runs headless Chromium with its own throw-away profile and no network
/// chatter; returns its stdout.
fn browser(chromium: &Path, extra: &[&str], timeout: Duration) -> Result<String> {
    let profile = tempfile::tempdir().context("creating a Chromium profile folder")?;
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", chromium.display()))?;
    // Read the pipes on threads so a chatty browser cannot block on them.
    let mut stdout = child.stdout.take().context("Chromium stdout")?;
    let mut stderr = child.stderr.take().context("Chromium stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not finish in {} s",
                chromium.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{} failed ({status}):\n{}",
            chromium.display(),
            stderr.lines().rev().take(15).collect::<Vec<_>>().join("\n")
        );
    }
    Ok(stdout)
}

/// What the rendered DOM holds.
#[derive(Debug, PartialEq)]
pub struct Found {
    pub charts: usize,
    pub curves: usize,
    pub confusions: usize,
    pub sections: usize,
}

/// Checks the DOM Chromium rendered against the metrics it shows.
pub fn check_dom(dom: &str, metrics: &Metrics) -> Result<Found> {
    if dom.trim().is_empty() {
        bail!("Chromium returned an empty DOM");
    }
    for bad in [
        "NaN",
        "ERR_FILE_NOT_FOUND",
        "ERR_ACCESS_DENIED",
        "This page isn",
        "This site can",
        "<parsererror",
    ] {
        if dom.contains(bad) {
            bail!("the rendered report contains error text `{bad}`");
        }
    }
    let declared: usize = meta_content(dom, "mtl-charts")
        .context("the rendered report has no <meta name=\"mtl-charts\">")?
        .parse()
        .context("<meta name=\"mtl-charts\"> is not a number")?;
    let found = Found {
        charts: dom.matches("<svg").count(),
        curves: dom.matches("data-chart=\"curve\"").count(),
        confusions: dom.matches("data-chart=\"confusion\"").count(),
        sections: dom.matches("<section id=\"task-").count(),
    };
    if found.charts == 0 || found.charts != declared {
        bail!(
            "the rendered DOM has {} <svg> charts, the report drew {declared}",
            found.charts
        );
    }
    for task in metrics.tasks.keys() {
        let id = format!("<section id=\"task-{}\"", mtl_eval::svg::esc(task));
        if !dom.contains(&id) {
            bail!("the rendered report has no section for task `{task}`");
        }
    }
    let classification = metrics
        .tasks
        .values()
        .filter(|t| {
            t.kind == TaskKind::Classification && t.splits.contains_key(&metrics.headline_split)
        })
        .count();
    if found.confusions != classification {
        bail!(
            "{} confusion matrices rendered for {classification} classification tasks",
            found.confusions
        );
    }
    Ok(found)
}

/// The `content` of `<meta name="NAME" content="...">`.
fn meta_content<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let at = dom.find(&format!("<meta name=\"{name}\" content=\""))?;
    let rest = &dom[at..];
    let start = rest.find("content=\"")? + "content=\"".len();
    let end = rest[start..].find('"')?;
    Some(&rest[start..start + end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn metrics(tasks: &[(&str, TaskKind)]) -> Metrics {
        let json = serde_json::json!({
            "pipeline": "p",
            "headline_split": "dev",
            "tasks": tasks.iter().map(|(n, k)| ((*n).to_string(), serde_json::json!({
                "kind": k, "metric": "m", "score": 0.5, "baseline": 0.1,
                "splits": {"dev": {"n": 1, "score": 0.5, "baseline": 0.1,
                    "metrics": {"n_words": 1, "correct_words": 1, "accuracy": 1.0,
                        "truncated_words": 0, "unscored_words": 0}}}
            }))).collect::<BTreeMap<_, _>>(),
        });
        serde_json::from_value(json).unwrap()
    }

    const DOM: &str = "<html><head><meta name=\"mtl-charts\" content=\"3\"></head><body>\
        <svg data-chart=\"scores\"></svg><section id=\"task-a\"><svg data-chart=\"curve\"></svg>\
        <svg data-chart=\"confusion\"></svg></section><section id=\"task-b\"></section></body></html>";

    #[test]
    fn a_complete_dom_passes() {
        let m = metrics(&[("a", TaskKind::Classification), ("b", TaskKind::Tagging)]);
        assert_eq!(
            check_dom(DOM, &m).unwrap(),
            Found {
                charts: 3,
                curves: 1,
                confusions: 1,
                sections: 2
            }
        );
    }

    #[test]
    fn missing_charts_sections_or_error_text_fail() {
        let m = metrics(&[("a", TaskKind::Classification), ("b", TaskKind::Tagging)]);
        let fewer = DOM.replace("<svg data-chart=\"curve\"></svg>", "");
        assert!(
            check_dom(&fewer, &m)
                .unwrap_err()
                .to_string()
                .contains("2 <svg>")
        );
        let nan = DOM.replace("</body>", "NaN</body>");
        assert!(check_dom(&nan, &m).unwrap_err().to_string().contains("NaN"));
        let m3 = metrics(&[("a", TaskKind::Classification), ("c", TaskKind::Tagging)]);
        assert!(check_dom(DOM, &m3).unwrap_err().to_string().contains("`c`"));
        let m2 = metrics(&[
            ("a", TaskKind::Classification),
            ("b", TaskKind::Classification),
        ]);
        assert!(
            check_dom(DOM, &m2)
                .unwrap_err()
                .to_string()
                .contains("confusion")
        );
        assert!(check_dom("", &m).is_err());
        let no_meta = DOM.replace("mtl-charts", "other");
        assert!(check_dom(&no_meta, &m).is_err());
    }
}
