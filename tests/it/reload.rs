//! Hot reload of the mappings: in-process through `reload::Reloader`, then the `rosetta serve`
//! binary on SIGHUP and on file changes (an editor's write-rename, a ConfigMap `..data` swap).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rosetta::serving::reload::{Fingerprint, Outcome, Overrides, Reloader, Source, Trigger};
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, Served, chat, post, request, stream, temp_dir};

const OLLAMA: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/ollama.yaml"));

/// The shipped Ollama mapping where model `fast` stands for `upstream`, with `extra` top-level
/// lines (e.g. `options:`) before its model list.
fn local(upstream: &str, extra: &str) -> String {
    let text = OLLAMA.replacen(
        "models:\n",
        &format!("{extra}models:\n  - {{id: fast, upstream: {upstream}}}\n"),
        1,
    );
    assert_ne!(text, OLLAMA, "the Ollama mapping has a models list");
    text
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
        + 1
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A counter or gauge line of the metrics text, as a number (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

const OK: &str = "rosetta_reloads_total{result=\"ok\"}";
const ERROR: &str = "rosetta_reloads_total{result=\"error\"}";
const UNCHANGED: &str = "rosetta_reloads_total{result=\"unchanged\"}";
const LOADED: &str = "rosetta_mappings_loaded";
const SUCCESSFUL: &str = "rosetta_last_reload_successful";

/// Rosetta in-process on `dir`, in front of a fake Ollama, with a reloader for that directory.
struct Setup {
    fake: FakeUpstream,
    dir: PathBuf,
    proxy: Proxy,
    reloader: Reloader,
}

async fn setup(files: &[(&str, String)]) -> Setup {
    let fake = FakeUpstream::ollama().await;
    let dir = temp_dir();
    for (name, text) in files {
        write(&dir, name, text);
    }
    let url = fake.base_url();
    let proxy = Proxy::start_dir(&dir, &[("OLLAMA_BASE_URL", url.clone())]).await;
    let source = Source::new(
        &dir,
        Arc::new(move |k: &str| (k == "OLLAMA_BASE_URL").then(|| url.clone())),
        Overrides::default(),
    );
    let reloader = Reloader::new(Arc::clone(&proxy.state), source, Fingerprint::read(&dir));
    Setup {
        fake,
        dir,
        proxy,
        reloader,
    }
}

impl Setup {
    /// Asks `NAME` for model `fast` and returns the model the upstream was sent.
    async fn upstream_model(&self, name: &str) -> Value {
        let r = post(
            &self.proxy.url(&format!("/{name}/v1/chat/completions")),
            &chat("fast", "Hi"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["model"], "fast");
        self.fake.requests().last().unwrap().body["model"].clone()
    }

    fn generation(&self) -> u64 {
        self.proxy.state.mappings().generation
    }
}

#[tokio::test]
async fn a_changed_file_is_swapped_in_and_an_unchanged_directory_is_skipped() {
    let s = setup(&[("local.yaml", local("model-a", ""))]).await;
    assert_eq!(s.upstream_model("local").await, "model-a");
    let first_loaded_at = s.proxy.state.mappings().loaded_at;
    assert!(first_loaded_at > 0);
    assert_eq!(s.generation(), 0);

    // Nothing changed on disk: no swap, counted as unchanged.
    assert!(matches!(
        s.reloader.reload(Trigger::Manual),
        Outcome::Unchanged
    ));
    assert_eq!(s.generation(), 0);

    write(&s.dir, "local.yaml", &local("model-b", ""));
    let Outcome::Reloaded(c) = s.reloader.reload(Trigger::Manual) else {
        panic!("the changed file reloads");
    };
    assert_eq!(c.changed, ["local"]);
    assert!(c.added.is_empty() && c.removed.is_empty(), "{c:?}");
    assert_eq!(c.mappings, ["local"]);
    assert_eq!(c.generation, 1);
    assert_eq!(s.generation(), 1);
    assert!(s.proxy.state.mappings().loaded_at >= first_loaded_at);
    assert_eq!(s.upstream_model("local").await, "model-b");

    let m = s.proxy.metrics();
    assert_eq!(metric(&m, OK), 1.0, "{m}");
    assert_eq!(metric(&m, UNCHANGED), 1.0, "{m}");
    assert_eq!(metric(&m, ERROR), 0.0, "{m}");
    assert!(
        m.contains(&format!("{ERROR} 0")),
        "every result is exported: {m}"
    );
    assert_eq!(metric(&m, LOADED), 1.0, "{m}");
    assert_eq!(metric(&m, SUCCESSFUL), 1.0, "{m}");
    assert!(
        metric(&m, "rosetta_last_reload_success_timestamp_seconds") >= first_loaded_at as f64,
        "{m}"
    );
}

#[tokio::test]
async fn a_broken_file_keeps_the_running_set_and_is_counted() {
    let s = setup(&[("local.yaml", local("model-a", ""))]).await;
    let file = s.dir.join("local.yaml");

    // A YAML syntax error: reported with the file and a line.
    let bad_yaml = local("model-b", "").replacen("models:\n", "models: [\n", 1);
    write(&s.dir, "local.yaml", &bad_yaml);
    let Outcome::Failed(errors) = s.reloader.reload(Trigger::Manual) else {
        panic!("a YAML error fails the reload");
    };
    assert!(
        errors.iter().any(|e| e.file == file && e.line.is_some()),
        "{errors:?}"
    );
    assert_eq!(s.upstream_model("local").await, "model-a");
    assert_eq!(s.generation(), 0);
    let m = s.proxy.metrics();
    assert_eq!(metric(&m, ERROR), 1.0, "{m}");
    assert_eq!(metric(&m, SUCCESSFUL), 0.0, "{m}");
    assert_eq!(metric(&m, LOADED), 1.0, "{m}");

    // An unknown directive: file, the exact line and the location in the error.
    let typo = local("model-b", "").replacen(
        "$coalesce: [$.stream, false]",
        "$coalesc: [$.stream, false]",
        1,
    );
    let line = line_of(&typo, "$coalesc:");
    write(&s.dir, "local.yaml", &typo);
    let Outcome::Failed(errors) = s.reloader.reload(Trigger::Manual) else {
        panic!("an unknown directive fails the reload");
    };
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with(&format!("{}:{line}: ", file.display()))
                && e.contains("routes.chat.request.stream")
                && e.contains("$coalesc")),
        "{shown:?}"
    );
    assert_eq!(s.upstream_model("local").await, "model-a");

    // A good change next to a broken new file: nothing of it is applied.
    write(&s.dir, "local.yaml", &local("model-b", ""));
    write(&s.dir, "other.yaml", "upstream: [\n");
    assert!(matches!(
        s.reloader.reload(Trigger::Manual),
        Outcome::Failed(_)
    ));
    assert_eq!(s.upstream_model("local").await, "model-a");
    let r = request("GET", &s.proxy.url("/other/v1/chat/completions"), None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(metric(&s.proxy.metrics(), ERROR), 3.0);

    // Fixed: the whole new set goes in.
    std::fs::remove_file(s.dir.join("other.yaml")).unwrap();
    assert!(matches!(
        s.reloader.reload(Trigger::Manual),
        Outcome::Reloaded(_)
    ));
    assert_eq!(s.upstream_model("local").await, "model-b");
    let m = s.proxy.metrics();
    assert_eq!(metric(&m, SUCCESSFUL), 1.0, "{m}");
    assert_eq!(metric(&m, OK), 1.0, "{m}");
    assert_eq!(s.generation(), 1);
}

#[tokio::test]
async fn adding_and_removing_files_adds_and_removes_mappings() {
    let s = setup(&[("local.yaml", local("model-a", ""))]).await;
    let second = s.proxy.url("/second/v1/chat/completions");
    assert_eq!(post(&second, &chat("fast", "Hi")).await.status, 404);

    write(&s.dir, "second.yaml", &local("model-2", ""));
    let Outcome::Reloaded(c) = s.reloader.reload(Trigger::Manual) else {
        panic!("a new file reloads");
    };
    assert_eq!(c.added, ["second"]);
    assert!(c.removed.is_empty() && c.changed.is_empty(), "{c:?}");
    assert_eq!(c.mappings, ["local", "second"]);
    assert_eq!(s.upstream_model("second").await, "model-2");
    assert_eq!(metric(&s.proxy.metrics(), LOADED), 2.0);

    std::fs::remove_file(s.dir.join("local.yaml")).unwrap();
    let Outcome::Reloaded(c) = s.reloader.reload(Trigger::Manual) else {
        panic!("a removed file reloads");
    };
    assert_eq!(c.removed, ["local"]);
    assert!(c.added.is_empty() && c.changed.is_empty(), "{c:?}");
    let r = post(
        &s.proxy.url("/local/v1/chat/completions"),
        &chat("fast", "Hi"),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(s.upstream_model("second").await, "model-2");
    assert_eq!(metric(&s.proxy.metrics(), LOADED), 1.0);

    // An empty directory is an error, not an empty proxy.
    std::fs::remove_file(s.dir.join("second.yaml")).unwrap();
    let Outcome::Failed(errors) = s.reloader.reload(Trigger::Manual) else {
        panic!("an empty directory fails the reload");
    };
    assert!(errors[0].message.contains("no mapping files"), "{errors:?}");
    assert_eq!(s.upstream_model("second").await, "model-2");
    assert_eq!(s.generation(), 2);
}

/// The reload applies the serve-time overrides (`--always-include-usage`) to the new set too.
#[tokio::test]
async fn overrides_apply_to_every_load() {
    let fake = FakeUpstream::ollama().await;
    let dir = temp_dir();
    write(&dir, "local.yaml", &local("model-a", ""));
    let url = fake.base_url();
    let source = Source::new(
        &dir,
        Arc::new(move |k: &str| (k == "OLLAMA_BASE_URL").then(|| url.clone())),
        Overrides {
            always_include_usage: true,
        },
    );
    let first = source.load().unwrap();
    assert!(first.mappings[0].always_include_usage);
    assert_eq!(first.fingerprint, Fingerprint::read(&dir));
    let state = Arc::new(rosetta::serving::state::State::new(first.mappings));
    let reloader = Reloader::new(Arc::clone(&state), source, first.fingerprint);
    write(&dir, "local.yaml", &local("model-b", ""));
    assert!(matches!(
        reloader.reload(Trigger::Signal),
        Outcome::Reloaded(_)
    ));
    let set = state.mappings();
    let m = &set.mappings["local"].mapping;
    assert!(m.always_include_usage, "the override survives the reload");
    assert_eq!(m.resolve_model("fast").unwrap(), "model-b");
}

#[tokio::test]
async fn an_in_flight_stream_finishes_on_the_mapping_it_started_with() {
    let s = setup(&[("local.yaml", local("model-a", ""))]).await;
    let url = s.proxy.url("/local/v1/chat/completions");
    let body = |text: &str| json!({"model": "fast", "stream": true, "messages": [{"role": "user", "content": text}]});
    let slow = tokio::spawn({
        let (url, body) = (url.clone(), body("SLOW one two three four five"));
        async move { stream(&url, &body).await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.fake.requests().is_empty() {
        assert!(Instant::now() < deadline, "the stream reached the upstream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The new set names another upstream model and always adds the usage chunk.
    write(
        &s.dir,
        "local.yaml",
        &local("model-b", "options: {always_include_usage: true}\n"),
    );
    assert!(matches!(
        s.reloader.reload(Trigger::Manual),
        Outcome::Reloaded(_)
    ));
    let swapped = Instant::now();

    let has_usage = |chunks: &[Value]| chunks.iter().any(|c| !c["usage"].is_null());
    let fresh = stream(&url, &body("Hello")).await;
    assert!(has_usage(&fresh.assert_valid()), "{}", fresh.text());
    assert_eq!(s.fake.requests().last().unwrap().body["model"], "model-b");

    let old = slow.await.unwrap();
    let chunks = old.assert_valid();
    assert!(
        old.frames.last().unwrap().0 > swapped,
        "the stream was still running at the swap"
    );
    assert!(
        !has_usage(&chunks),
        "the old mapping adds no usage: {}",
        old.text()
    );
    assert_eq!(s.fake.requests()[0].body["model"], "model-a");
    assert!(!old.content().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The binary: SIGHUP and the directory watcher.

/// `rosetta serve` on a free port with the mappings in `dir`, in front of a fake Ollama.
fn serve(dir: &Path, ollama: &str, flags: &[&str]) -> Served {
    Served::spawn(
        dir,
        &[("OLLAMA_BASE_URL", ollama), ("RUST_LOG", "info")],
        flags,
    )
}

impl Served {
    /// `405` when mapping `name` is loaded (its chat path answers GET so), `404` when not.
    async fn probe(&self, name: &str) -> u16 {
        request(
            "GET",
            &self.url(&format!("/{name}/v1/chat/completions")),
            None,
        )
        .await
        .status
    }
}

/// Polls `check` every 50 ms for up to 5 s.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_running_binary() {
    let fake = FakeUpstream::ollama().await;
    let dir = temp_dir();
    write(&dir, "local.yaml", &local("model-a", ""));
    let mut served = serve(&dir, &fake.base_url(), &["--watch=false"]);
    assert_eq!(served.probe("local").await, 405);
    assert_eq!(served.probe("second").await, 404);

    // With the watcher off, a new file waits for the signal.
    write(&dir, "second.yaml", &local("model-2", ""));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        served.probe("second").await,
        404,
        "no watcher: {}",
        served.log()
    );

    served.signal("HUP");
    assert!(
        eventually(async || served.probe("second").await == 405).await,
        "SIGHUP reloads: {}",
        served.log()
    );
    assert!(served.try_wait().is_none(), "SIGHUP does not stop it");
    let m = served.metrics().await;
    assert_eq!(metric(&m, OK), 1.0, "{m}");
    assert_eq!(metric(&m, LOADED), 2.0, "{m}");
    // The info line names what changed.
    assert!(
        eventually(async || {
            let log = served.log();
            log.lines()
                .any(|l| l.contains("reloaded") && l.contains("second"))
        })
        .await,
        "{}",
        served.log()
    );
    // Another signal with nothing changed: no swap.
    served.signal("HUP");
    assert!(
        eventually(async || metric(&served.metrics().await, UNCHANGED) == 1.0).await,
        "{}",
        served.log()
    );
    assert_eq!(metric(&served.metrics().await, OK), 1.0);
}

#[cfg(unix)]
#[tokio::test]
async fn file_changes_reload_the_running_binary_without_a_signal() {
    let fake = FakeUpstream::ollama().await;
    let dir = temp_dir();
    write(&dir, "local.yaml", &local("model-a", ""));
    let served = serve(&dir, &fake.base_url(), &[]);
    assert_eq!(served.probe("second").await, 404);

    // An editor's save: write a temporary file, rename it over the name.
    write(&dir, ".second.yaml.tmp", &local("model-2", ""));
    std::fs::rename(dir.join(".second.yaml.tmp"), dir.join("second.yaml")).unwrap();
    assert!(
        eventually(async || served.probe("second").await == 405).await,
        "the watcher reloads: {}",
        served.log()
    );
    // One save, one reload; reading the files does not trigger another one.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let m = served.metrics().await;
    assert_eq!(metric(&m, OK), 1.0, "{m}");
    assert_eq!(metric(&m, UNCHANGED), 0.0, "{m}");

    // A broken save: logged with file and line, counted, and the running set keeps serving.
    let typo = local("model-b", "").replacen(
        "$coalesce: [$.stream, false]",
        "$coalesc: [$.stream, false]",
        1,
    );
    let line = line_of(&typo, "$coalesc:");
    write(&dir, "local.yaml", &typo);
    assert!(
        eventually(async || metric(&served.metrics().await, ERROR) >= 1.0).await,
        "{}",
        served.log()
    );
    let wanted = format!("{}:{line}: ", dir.join("local.yaml").display());
    assert!(
        eventually(async || served.log().contains(&wanted)).await,
        "{wanted} in {}",
        served.log()
    );
    assert_eq!(served.probe("local").await, 405);
    assert_eq!(served.probe("second").await, 405);
    let r = post(
        &served.url("/local/v1/chat/completions"),
        &chat("fast", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fake.requests().last().unwrap().body["model"], "model-a");
    assert_eq!(metric(&served.metrics().await, SUCCESSFUL), 0.0);
}

/// A Kubernetes ConfigMap volume: `NAME.yaml -> ..data/NAME.yaml`, `..data -> ..TIMESTAMP`, and
/// an update swaps the `..data` symlink by a rename. The files themselves never change.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_symlink_swap_reloads_the_running_binary() {
    use std::os::unix::fs::symlink;
    let fake = FakeUpstream::ollama().await;
    let dir = temp_dir();
    std::fs::create_dir(dir.join("..2025_01_01_00_00_00.1")).unwrap();
    write(
        &dir.join("..2025_01_01_00_00_00.1"),
        "local.yaml",
        &local("model-a", ""),
    );
    symlink("..2025_01_01_00_00_00.1", dir.join("..data")).unwrap();
    symlink("..data/local.yaml", dir.join("local.yaml")).unwrap();
    let served = serve(&dir, &fake.base_url(), &[]);
    let ask = async || {
        let r = post(
            &served.url("/local/v1/chat/completions"),
            &chat("fast", "Hi"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        fake.requests().last().unwrap().body["model"].clone()
    };
    assert_eq!(ask().await, "model-a");

    // What the kubelet does: a new timestamped directory, `..data_tmp` to it, renamed over
    // `..data`, the old directory removed.
    std::fs::create_dir(dir.join("..2025_01_01_00_01_00.2")).unwrap();
    write(
        &dir.join("..2025_01_01_00_01_00.2"),
        "local.yaml",
        &local("model-b", ""),
    );
    symlink("..2025_01_01_00_01_00.2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2025_01_01_00_00_00.1")).unwrap();

    assert!(
        eventually(async || ask().await == "model-b").await,
        "the ..data swap reloads: {}",
        served.log()
    );
    let m = served.metrics().await;
    assert_eq!(metric(&m, OK), 1.0, "{m}");
    assert_eq!(metric(&m, ERROR), 0.0, "{m}");
}
