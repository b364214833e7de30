//! Tests of `crate::serving::reload`.

use super::*;
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};

fn event(kind: EventKind, path: &str) -> notify::Event {
    notify::Event::new(kind).add_path(PathBuf::from(path))
}

#[test]
fn only_events_that_can_change_the_mappings_count() {
    let dir = Path::new("/m");
    let yes = [
        event(EventKind::Create(CreateKind::File), "/m/a.yaml"),
        event(EventKind::Modify(ModifyKind::Any), "/m/b.yml"),
        event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/m/a.yaml",
        ),
        event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            "/m/..data",
        ),
        event(EventKind::Remove(notify::event::RemoveKind::Folder), "/m"),
        notify::Event::new(EventKind::Other),
    ];
    for e in &yes {
        assert!(relevant(dir, e), "{e:?}");
    }
    let no = [
        event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/m/a.yaml",
        ),
        event(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            "/m/a.yaml",
        ),
        event(EventKind::Create(CreateKind::File), "/m/.a.yaml.swp"),
        event(EventKind::Modify(ModifyKind::Any), "/m/notes.txt"),
    ];
    for e in &no {
        assert!(!relevant(dir, e), "{e:?}");
    }
}

#[test]
fn fingerprints_follow_names_and_contents_of_mapping_files_only() {
    let dir = std::env::temp_dir().join(format!("rosetta-fp-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), "one").unwrap();
    let first = Fingerprint::read(&dir);
    assert_eq!(first, Fingerprint::read(&dir));
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    assert_eq!(first, Fingerprint::read(&dir), "other files do not count");
    std::fs::write(dir.join("a.yaml"), "two").unwrap();
    let second = Fingerprint::read(&dir);
    assert_ne!(first, second, "contents count");
    std::fs::rename(dir.join("a.yaml"), dir.join("b.yaml")).unwrap();
    assert_ne!(second, Fingerprint::read(&dir), "names count");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_ne!(Fingerprint::read(&dir), Fingerprint::default());
}
