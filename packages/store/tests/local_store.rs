//! The folder store: addressing, refusals, idempotence and crash safety.

use std::fs::{self, File};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use tributary_store::local::{STALE_TEMP_AGE, TEMP_DIR};
use tributary_store::{ContentHash, ContentStore, Error, LocalStore, Stored};

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                files.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
}

fn set_age(path: &Path, age: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

#[test]
fn stores_a_blob_under_its_hash_in_a_fan_out_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let hash = store.put(b"a contribution").unwrap();

    assert_eq!(hash, ContentHash::of(b"a contribution"));
    assert_eq!(store.get(&hash).unwrap().unwrap(), b"a contribution");
    assert_eq!(store.size(&hash).unwrap(), Some(14));
    assert!(store.contains(&hash).unwrap());
    let hex = hash.to_hex();
    assert_eq!(
        files_under(dir.path()),
        vec![format!("{}/{hex}", &hex[..2])]
    );
    assert_eq!(
        store.blob_path(&hash),
        dir.path().join(&hex[..2]).join(&hex)
    );

    let absent = ContentHash::of(b"never stored");
    assert_eq!(store.get(&absent).unwrap(), None);
    assert_eq!(store.size(&absent).unwrap(), None);
    assert!(!store.contains(&absent).unwrap());
}

#[test]
fn refuses_bytes_that_do_not_match_their_hash_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let claimed = ContentHash::of(b"what was promised");

    let err = store.put_expected(&claimed, b"what was sent").unwrap_err();
    match err {
        Error::HashMismatch { expected, actual } => {
            assert_eq!(expected, claimed);
            assert_eq!(actual, ContentHash::of(b"what was sent"));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(files_under(dir.path()).is_empty());
    assert!(!store.contains(&claimed).unwrap());
}

#[test]
fn refuses_blobs_over_the_cap_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap().with_max_blob_bytes(8);

    assert!(matches!(
        store.put(b"nine bytes"),
        Err(Error::TooLarge { size: 10, max: 8 })
    ));
    assert!(files_under(dir.path()).is_empty());
    assert!(store.put(b"8 bytes!").is_ok());
}

#[test]
fn putting_a_stored_blob_again_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let hash = ContentHash::of(b"same bytes");
    assert_eq!(
        store.put_expected(&hash, b"same bytes").unwrap(),
        Stored::Created
    );

    let path = store.blob_path(&hash);
    set_age(&path, Duration::from_secs(3600));
    let before = fs::metadata(&path).unwrap().modified().unwrap();

    assert_eq!(
        store.put_expected(&hash, b"same bytes").unwrap(),
        Stored::AlreadyPresent
    );
    assert_eq!(store.put(b"same bytes").unwrap(), hash);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
    assert!(files_under(&dir.path().join(TEMP_DIR)).is_empty());
}

#[test]
fn the_leftover_of_an_interrupted_write_is_ignored_and_swept_once_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let bytes = vec![7u8; 4096];
    let hash = ContentHash::of(&bytes);

    // What a crash mid-write leaves: part of the blob in a temporary file.
    let temp_dir = dir.path().join(TEMP_DIR);
    let stale = temp_dir.join(format!("{hash}.1.0.tmp"));
    fs::write(&stale, &bytes[..1000]).unwrap();
    set_age(&stale, STALE_TEMP_AGE + Duration::from_secs(60));
    let fresh = temp_dir.join(format!("{hash}.2.0.tmp"));
    fs::write(&fresh, &bytes[..10]).unwrap();

    assert_eq!(store.get(&hash).unwrap(), None);
    assert_eq!(store.size(&hash).unwrap(), None);
    assert_eq!(store.put_expected(&hash, &bytes).unwrap(), Stored::Created);
    assert_eq!(store.get(&hash).unwrap().unwrap(), bytes);

    // Reopening removes what no live write could still own, and leaves the rest.
    let reopened = LocalStore::open(dir.path()).unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists());
    assert_eq!(reopened.get(&hash).unwrap().unwrap(), bytes);
}

#[test]
fn a_blob_is_never_visible_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let blobs: Vec<Vec<u8>> = (0u8..4).map(|i| vec![i; 16 * 1024 * 1024]).collect();
    let paths: Vec<_> = blobs
        .iter()
        .map(|blob| store.blob_path(&ContentHash::of(blob)))
        .collect();
    let expected_len = blobs[0].len() as u64;

    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        let paths = paths.clone();
        thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                for path in &paths {
                    if let Ok(meta) = fs::metadata(path) {
                        assert_eq!(meta.len(), expected_len, "{} seen partial", path.display());
                    }
                }
            }
        })
    };
    for blob in &blobs {
        store.put(blob).unwrap();
    }
    done.store(true, Ordering::Release);
    watcher.join().unwrap();

    for (blob, path) in blobs.iter().zip(&paths) {
        assert_eq!(&fs::read(path).unwrap(), blob);
    }
    // Nothing is left behind but the blobs themselves.
    assert_eq!(files_under(dir.path()).len(), blobs.len());
}

#[test]
fn a_blob_damaged_on_disk_is_reported_and_a_fresh_put_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let hash = store.put(b"intact bytes").unwrap();
    fs::write(store.blob_path(&hash), b"intact").unwrap();

    assert!(matches!(store.get(&hash), Err(Error::Corrupt { hash: h, .. }) if h == hash));
    assert_eq!(
        store.put_expected(&hash, b"intact bytes").unwrap(),
        Stored::Created
    );
    assert_eq!(store.get(&hash).unwrap().unwrap(), b"intact bytes");
}

#[tokio::test]
async fn the_async_interface_reaches_the_same_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let shared: Arc<dyn ContentStore> = Arc::new(store.clone());

    let hash = shared.put(b"through the trait".to_vec()).await.unwrap();
    assert_eq!(store.get(&hash).unwrap().unwrap(), b"through the trait");
    assert_eq!(shared.size(&hash).await.unwrap(), Some(17));
    assert!(shared.contains(&hash).await.unwrap());
    assert_eq!(
        shared
            .put_expected(&hash, b"through the trait".to_vec())
            .await
            .unwrap(),
        Stored::AlreadyPresent
    );
    assert!(matches!(
        shared.put_expected(&hash, b"other".to_vec()).await,
        Err(Error::HashMismatch { .. })
    ));
}
