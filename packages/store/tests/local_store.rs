//! The folder store: addressing, refusals, idempotence and crash safety.

use std::fs::{self, File};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tributary_store::local::{QUARANTINE_DIR, STALE_TEMP_AGE, TEMP_DIR};
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

#[test]
fn a_blob_damaged_on_disk_is_quarantined_when_read_and_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let hash = store.put(b"intact bytes").unwrap();
    // The same length: only the hash tells.
    fs::write(store.blob_path(&hash), b"damaged byte").unwrap();

    assert!(matches!(store.get(&hash), Err(Error::Corrupt { hash: h, .. }) if h == hash));
    assert!(
        !store.blob_path(&hash).exists(),
        "still served under its name"
    );
    assert_eq!(store.get(&hash).unwrap(), None);
    let quarantined = files_under(&dir.path().join(QUARANTINE_DIR));
    assert_eq!(quarantined.len(), 1);
    assert!(
        quarantined[0].starts_with(&hash.to_hex()),
        "{quarantined:?}"
    );
}

#[test]
fn a_fresh_put_replaces_a_blob_damaged_without_a_change_of_length() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let hash = store.put(b"intact bytes").unwrap();
    fs::write(store.blob_path(&hash), b"damaged byte").unwrap();

    // Not taken for the blob on the strength of its length.
    assert_eq!(
        store.put_expected(&hash, b"intact bytes").unwrap(),
        Stored::Created
    );
    assert_eq!(store.get(&hash).unwrap().unwrap(), b"intact bytes");
    assert_eq!(files_under(&dir.path().join(QUARANTINE_DIR)).len(), 1);
}

#[test]
fn a_disk_budget_refuses_writes_past_it_and_counts_what_the_folder_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path())
        .unwrap()
        .with_max_total_bytes(1000)
        .unwrap();
    store.put(&[1u8; 600]).unwrap();
    assert!(matches!(
        store.put(&[2u8; 600]),
        Err(Error::StoreFull {
            needed: 600,
            available: 400,
            max: 1000
        })
    ));
    // A blob already there takes no room.
    store.put(&[1u8; 600]).unwrap();
    assert_eq!(store.used_bytes(), Some(600));
    assert!(files_under(&dir.path().join(TEMP_DIR)).is_empty());

    // Reopened, the store counts what is on disk, quarantined blobs included.
    let hash = store.put(&[3u8; 300]).unwrap();
    fs::write(store.blob_path(&hash), [4u8; 300]).unwrap();
    assert!(store.get(&hash).is_err());
    let reopened = LocalStore::open(dir.path())
        .unwrap()
        .with_max_total_bytes(1000)
        .unwrap();
    assert_eq!(reopened.used_bytes(), Some(900));
    assert!(matches!(
        reopened.put(&[5u8; 101]),
        Err(Error::StoreFull { .. })
    ));
}

#[tokio::test]
async fn a_streamed_write_stores_only_bytes_that_hash_to_their_name_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let chunks = |parts: &[&'static [u8]]| {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|part| Ok(Bytes::from_static(part)))
                .collect::<Vec<_>>(),
        )
    };
    let hash = ContentHash::of(b"streamed in parts");

    let written = store
        .put_stream(&hash, 1024, chunks(&[b"streamed ", b"in ", b"parts"]))
        .await
        .unwrap();
    assert_eq!(written.stored, Stored::Created);
    assert_eq!(written.size, 17);
    assert_eq!(store.get(&hash).unwrap().unwrap(), b"streamed in parts");

    let other = ContentHash::of(b"promised");
    assert!(matches!(
        store
            .put_stream(&other, 1024, chunks(&[b"delivered"]))
            .await,
        Err(Error::HashMismatch { .. })
    ));
    assert!(matches!(
        store
            .put_stream(&other, 4, chunks(&[b"prom", b"ised"]))
            .await,
        Err(Error::TooLarge { size: 8, max: 4 })
    ));
    assert!(!store.contains(&other).unwrap());
    assert!(files_under(&dir.path().join(TEMP_DIR)).is_empty());
}

#[tokio::test]
async fn a_streamed_read_holds_back_the_last_chunk_until_the_blob_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let hash = store.put(&bytes).unwrap();

    let mut reader = store.open_blob(&hash).await.unwrap().unwrap();
    assert_eq!(reader.len(), bytes.len() as u64);
    let mut read = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        read.extend_from_slice(&chunk);
    }
    assert_eq!(read, bytes);

    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 1;
    fs::write(store.blob_path(&hash), &damaged).unwrap();
    let mut reader = store.open_blob(&hash).await.unwrap().unwrap();
    let mut delivered = 0;
    let outcome = loop {
        match reader.next_chunk().await {
            Ok(Some(chunk)) => delivered += chunk.len(),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(matches!(outcome, Err(Error::Corrupt { .. })), "{outcome:?}");
    assert!(
        delivered < bytes.len(),
        "every byte of a damaged blob was handed out"
    );
    assert!(store.open_blob(&hash).await.unwrap().is_none());
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
