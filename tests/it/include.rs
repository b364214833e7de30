//! `include:` across a reload: editing the included file changes the including mapping, and a
//! reload that finds a cycle keeps the running set.

use std::sync::Arc;

use rosetta::serving::reload::{Outcome, Overrides, Reloader, Source, Trigger};
use rosetta_testkit::FakeUpstream;

use super::support::{Proxy, chat, post, temp_dir};

const BASE: &str = "upstream:\n  base_url: ${OLLAMA_BASE_URL}\nroutes:\n  chat:\n    path: /api/chat\n    request:\n      model: $.model\n      stream: {$const: false}\n      messages: $.messages\n      options: {temperature: {$const: 0.5}}\n    response:\n      content: $.message.content\n";
const CHILD: &str = "include: base.yaml\nupstream:\n  base_url: ${OLLAMA_BASE_URL}\n";

#[tokio::test]
async fn editing_the_included_file_changes_the_including_mapping_on_reload() {
    let fake = FakeUpstream::ollama().await;
    let dir = temp_dir();
    let lib = temp_dir();
    // The base lives outside the mappings directory: only the child is served.
    std::fs::write(lib.join("base.yaml"), BASE).unwrap();
    let child = CHILD.replace("base.yaml", &lib.join("base.yaml").display().to_string());
    std::fs::write(dir.join("child.yaml"), &child).unwrap();
    let url = fake.base_url();
    let proxy = Proxy::start_dir(&dir, &[("OLLAMA_BASE_URL", url.clone())]).await;
    let names: Vec<String> = proxy.state.mappings().mappings.keys().cloned().collect();
    assert_eq!(
        names,
        ["child"],
        "the included file is not served on its own"
    );
    let (target, body) = (
        proxy.url("/child/v1/chat/completions"),
        chat("llama3.2", "Hi"),
    );
    let ask = || post(&target, &body);
    assert_eq!(ask().await.status, 200);
    assert_eq!(
        fake.requests().last().unwrap().body["options"]["temperature"],
        0.5
    );

    let source = Source::new(
        &dir,
        Arc::new(move |k: &str| (k == "OLLAMA_BASE_URL").then(|| url.clone())),
        Overrides::default(),
    );
    let running = source.load().map(|c| c.fingerprint).unwrap();
    let reloader = Reloader::new(Arc::clone(&proxy.state), source, running);
    assert!(matches!(
        reloader.reload(Trigger::Signal),
        Outcome::Unchanged
    ));
    std::fs::write(lib.join("base.yaml"), BASE.replace("0.5", "0.25")).unwrap();
    assert!(reloader.changed_on_disk(), "the included file is watched");
    assert!(matches!(
        reloader.reload(Trigger::Signal),
        Outcome::Reloaded(_)
    ));
    assert_eq!(ask().await.status, 200);
    assert_eq!(
        fake.requests().last().unwrap().body["options"]["temperature"],
        0.25
    );

    // A cycle introduced by the edit is refused: the running set stays.
    std::fs::write(
        lib.join("base.yaml"),
        format!("include: {}\n{BASE}", dir.join("child.yaml").display()),
    )
    .unwrap();
    match reloader.reload(Trigger::Signal) {
        Outcome::Failed(errors) => {
            assert!(
                errors.iter().any(|e| e.message.contains("include cycle")),
                "{errors:?}"
            );
        }
        _ => panic!("a cycle must fail the reload"),
    }
    assert_eq!(ask().await.status, 200);
    assert_eq!(
        fake.requests().last().unwrap().body["options"]["temperature"],
        0.25
    );
}
