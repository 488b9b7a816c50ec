//! Four validators on loopback: CometBFT tolerates one crash (3/4 > 2/3 of the power), halts
//! at two, and resumes without losing a committed transaction. Needs `TRIBUTARYD=$(chain/build)`.

mod common;

use common::{utrib, LiveNet};
use std::time::Duration;
use tributary_client::{ChainConfig, Client, Signer};

const TIMEOUT: Duration = Duration::from_secs(90);

/// A client of node `index` (the others may be down).
async fn client_of(net: &LiveNet, index: usize) -> Client {
    let mut config: ChainConfig = net.config();
    config.rpc_url = net.devnet.nodes[index].rpc_url.clone();
    config.confirm_timeout = Duration::from_secs(60);
    Client::connect(config).await.unwrap()
}

#[tokio::test]
async fn four_validators_survive_a_crash_halt_without_quorum_and_lose_nothing() {
    let net = LiveNet::start_validators(2900, Some(300), 4).await;
    let devnet = &net.devnet;
    let user = net.signer("user");
    let sink = Signer::random("trib").unwrap().address().to_string();
    let client = client_of(&net, 0).await;

    // Every validator signs blocks: node 3 follows node 0.
    let h = devnet.wait_for_height(0, 3, TIMEOUT).await.unwrap();
    devnet.wait_for_height(3, h, TIMEOUT).await.unwrap();

    // One of four down (kill -9): blocks continue and a transaction lands.
    devnet.kill_node(3).unwrap();
    let first = client.send(&user, &sink, utrib(111)).await.unwrap();
    let h = devnet
        .wait_for_height(0, first.height + 2, TIMEOUT)
        .await
        .unwrap();

    // It comes back and catches up past the transaction's block.
    devnet.start_node(3).unwrap();
    devnet.wait_for_height(3, h, TIMEOUT).await.unwrap();
    let from_node3 = client_of(&net, 3).await;
    assert_eq!(
        from_node3.wait_for_tx(&first.hash).await.unwrap().height,
        first.height
    );

    // Two of four down: 2/4 < 2/3 of the power, the chain halts.
    devnet.kill_node(2).unwrap();
    devnet.kill_node(3).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let halted = devnet.height(0).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let still = devnet.height(0).await.unwrap();
    assert!(
        still <= halted + 1,
        "blocks without quorum: {halted} -> {still}"
    );

    // Restarted, it resumes; the transaction committed before the halt is still there and a
    // new one lands.
    devnet.start_node(2).unwrap();
    devnet.start_node(3).unwrap();
    devnet.wait_for_height(0, still + 2, TIMEOUT).await.unwrap();
    assert_eq!(
        client.wait_for_tx(&first.hash).await.unwrap().height,
        first.height
    );
    let second = client.send(&user, &sink, utrib(222)).await.unwrap();
    assert!(second.height > still);
    assert_eq!(client.balance(&sink, "utrib").await.unwrap(), 333);
}
