//! Real `tributaryd` processes on loopback ports. Needs the binary: `TRIBUTARYD=$(chain/build)`.

use std::time::Duration;
use tributary_devnet::{Devnet, DevnetParams, Error, InitOptions, Tributaryd};

fn options(validators: usize, port_offset: u16) -> InitOptions {
    InitOptions {
        validators,
        port_offset,
        block_time_ms: Some(300),
        ..InitOptions::default()
    }
}

#[tokio::test]
async fn one_validator_produces_blocks_and_refuses_a_second_init() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let bin = Tributaryd::from_env();
    let params = DevnetParams::default_devnet();
    let devnet = Devnet::init(&bin, &home, &params, &options(1, 1000)).unwrap();
    assert_eq!(devnet.keys.len(), params.accounts.names.len());
    assert!(devnet.key("curator").unwrap().address.starts_with("trib1"));

    devnet.start().unwrap();
    let result = devnet.wait_for_height(0, 3, Duration::from_secs(60)).await;
    let again = Devnet::init(&bin, &home, &params, &options(1, 1000));
    let running_again = devnet.start_node(0);
    devnet.stop().unwrap();
    result.unwrap();
    assert!(matches!(again, Err(Error::AlreadyInitialized { .. })));
    assert!(matches!(
        running_again,
        Err(Error::AlreadyRunning { index: 0, .. })
    ));
    assert!(!devnet.is_running(0));

    // A reloaded devnet restarts from its data and keeps its height.
    let reloaded = Devnet::load(&home).unwrap();
    let before = 3;
    reloaded.start().unwrap();
    let after = reloaded
        .wait_for_height(0, before + 2, Duration::from_secs(60))
        .await;
    reloaded.stop().unwrap();
    after.unwrap();
}

#[tokio::test]
async fn a_half_initialized_home_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leftover"), b"x").unwrap();
    let result = Devnet::init(
        &Tributaryd::from_env(),
        dir.path(),
        &DevnetParams::default_devnet(),
        &options(1, 1100),
    );
    assert!(matches!(result, Err(Error::HalfInitialized { .. })));
}
