//! Chain events: a plain decoded form, the payout contract's inference requests, a WebSocket
//! subscription to them and a per-block polling fallback.

use crate::{Client, Error};
use cosmrs::tendermint::abci;
use futures::stream::{self, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use tendermint_rpc::event::EventData;
use tendermint_rpc::query::{EventType, Query};
use tendermint_rpc::{Client as _, SubscriptionClient, WebSocketClient, WebSocketClientUrl};
use tokio::task::JoinHandle;
use tributary_types::AssetInfo;

/// One ABCI event: its type and attributes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// The first value of `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl From<&abci::Event> for Event {
    fn from(event: &abci::Event) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Event {
            kind: event.kind.clone(),
            attributes: event
                .attributes
                .iter()
                .map(|a| (text(a.key_bytes()), text(a.value_bytes())))
                .collect(),
        }
    }
}

/// The type of the payout contract's request event (`inference_requested`, prefixed by wasmd).
pub const INFERENCE_REQUESTED: &str = "wasm-inference_requested";

/// A paid inference request, as the payout contract announced it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InferenceRequested {
    pub request_id: u64,
    pub model_id: u64,
    pub version: u32,
    pub payer: String,
    /// Lower-case hex SHA-256 of the prompt.
    pub prompt_hash: String,
    /// The escrowed price.
    pub amount: u128,
    pub asset: AssetInfo,
    /// The payout contract.
    pub contract: String,
    /// The block that included the request, when known.
    pub height: Option<u64>,
    /// The transaction that paid: set by [`crate::PayoutContract::request_inference`] and
    /// `request_inference_cw20`, which sent it; `None` when read from a block or a subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// When the request expires (block time, unix seconds), when the event says.
    pub expires_at: Option<u64>,
}

impl InferenceRequested {
    /// Decodes the requests announced by `contract` in one transaction's events: the
    /// `wasm-inference_requested` events, or, where a contract emits only its `wasm` event, those
    /// with `action=request_inference`.
    pub fn from_events(events: &[Event], contract: &str) -> Result<Vec<Self>, Error> {
        let from = |kind: &str| {
            events
                .iter()
                .filter(|e| e.kind == kind && e.attribute("_contract_address") == Some(contract))
                .filter(|e| kind != "wasm" || e.attribute("action") == Some("request_inference"))
                .map(Self::from_event)
                .collect::<Result<Vec<_>, _>>()
        };
        let typed = from(INFERENCE_REQUESTED)?;
        if typed.is_empty() {
            from("wasm")
        } else {
            Ok(typed)
        }
    }

    fn from_event(event: &Event) -> Result<Self, Error> {
        let get = |key: &str| {
            event.attribute(key).ok_or_else(|| {
                Error::Decode(format!("{} event has no {key:?} attribute", event.kind))
            })
        };
        let number = |key: &str| -> Result<u64, Error> {
            let v = get(key)?;
            v.parse()
                .map_err(|_| Error::Decode(format!("{key} {v:?} is not a number")))
        };
        let version = number("version")?;
        let asset = get("asset")?;
        Ok(Self {
            request_id: number("request_id")?,
            model_id: number("model_id")?,
            version: u32::try_from(version)
                .map_err(|_| Error::Decode(format!("version {version} is too large")))?,
            payer: get("payer")?.to_string(),
            prompt_hash: get("prompt_hash")?.to_string(),
            amount: crate::client::amount(get("amount")?)?,
            // The contract writes an asset as `<denom>` or `cw20:<address>`.
            asset: match asset.strip_prefix("cw20:") {
                Some(address) => AssetInfo::cw20(address),
                None => AssetInfo::native(asset),
            },
            contract: get("_contract_address")?.to_string(),
            height: None,
            tx_hash: None,
            expires_at: match event.attribute("expires_at") {
                Some(_) => Some(number("expires_at")?),
                None => None,
            },
        })
    }
}

impl Client {
    /// The inference requests `payout` announced in block `height` (a polling fallback for
    /// [`Client::subscribe_inference_requests`]).
    pub async fn inference_requests_in_block(
        &self,
        payout: &str,
        height: u64,
    ) -> Result<Vec<InferenceRequested>, Error> {
        let height = cosmrs::tendermint::block::Height::try_from(height)
            .map_err(|e| Error::Rpc(format!("height {height}: {e}")))?;
        let results = self.rpc.block_results(height).await?;
        let mut requests = Vec::new();
        for tx in results.txs_results.unwrap_or_default() {
            if tx.code.is_err() {
                continue;
            }
            let events: Vec<Event> = tx.events.iter().map(Event::from).collect();
            for mut request in InferenceRequested::from_events(&events, payout)? {
                request.height = Some(height.value());
                requests.push(request);
            }
        }
        Ok(requests)
    }

    /// Subscribes over WebSocket to the inference requests `payout` announces from now on.
    ///
    /// The stream ends when the connection drops; callers catch up with
    /// [`Client::inference_requests_in_block`] from the last height they saw.
    pub async fn subscribe_inference_requests(
        &self,
        payout: &str,
    ) -> Result<InferenceRequests, Error> {
        self.parse_address(payout)?;
        let url = websocket_url(&self.config.rpc_url)?;
        let (client, driver) = WebSocketClient::builder(url)
            .compat_mode(tendermint_rpc::client::CompatMode::V0_38)
            .build()
            .await
            .map_err(|e| Error::NodeUnreachable {
                url: self.config.rpc_url.clone(),
                reason: crate::error::rpc_reason(&e),
            })?;
        let driver = tokio::spawn(async move {
            // The driver ends with the connection; the subscription stream then ends too.
            let _ = driver.run().await;
        });
        let query = Query::from(EventType::Tx)
            .and_eq(format!("{INFERENCE_REQUESTED}._contract_address"), payout);
        let subscription = match client.subscribe(query).await {
            Ok(s) => s,
            Err(e) => {
                driver.abort();
                return Err(e.into());
            }
        };
        let payout = payout.to_string();
        let inner = subscription.flat_map(move |event| {
            let decoded: Vec<Result<InferenceRequested, Error>> = match event {
                Err(e) => vec![Err(e.into())],
                Ok(event) => match event.data {
                    EventData::Tx { tx_result } => {
                        let events: Vec<Event> =
                            tx_result.result.events.iter().map(Event::from).collect();
                        match InferenceRequested::from_events(&events, &payout) {
                            Ok(requests) => requests
                                .into_iter()
                                .map(|mut r| {
                                    r.height = u64::try_from(tx_result.height).ok();
                                    Ok(r)
                                })
                                .collect(),
                            Err(e) => vec![Err(e)],
                        }
                    }
                    _ => Vec::new(),
                },
            };
            stream::iter(decoded)
        });
        Ok(InferenceRequests {
            inner: Box::pin(inner),
            client: Some(client),
            driver,
        })
    }
}

/// A live stream of inference requests; dropping it closes the WebSocket.
pub struct InferenceRequests {
    inner: Pin<Box<dyn Stream<Item = Result<InferenceRequested, Error>> + Send>>,
    client: Option<WebSocketClient>,
    driver: JoinHandle<()>,
}

impl Stream for InferenceRequests {
    type Item = Result<InferenceRequested, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.as_mut().poll_next(cx)
    }
}

impl Drop for InferenceRequests {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close();
        }
        self.driver.abort();
    }
}

/// `http://host:port` → `ws://host:port/websocket` (CometBFT's WebSocket endpoint).
fn websocket_url(rpc_url: &str) -> Result<WebSocketClientUrl, Error> {
    let base = rpc_url.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}/websocket")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}/websocket")
    } else {
        format!("{base}/websocket")
    };
    ws.parse()
        .map_err(|e| Error::Config(format!("websocket url {ws:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, attributes: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const PAYOUT: &str = "trib1payout";

    fn request_attributes(id: &str) -> Vec<(&str, &str)> {
        vec![
            ("_contract_address", PAYOUT),
            ("request_id", id),
            ("model_id", "3"),
            ("version", "2"),
            ("payer", "trib1payer"),
            ("amount", "1000"),
            ("asset", "utrib"),
            ("prompt_hash", "ab01"),
            ("expires_at", "1700000000"),
            ("msg_index", "0"),
        ]
    }

    #[test]
    fn inference_requests_decode_from_the_typed_event() {
        let mut wasm = request_attributes("7");
        wasm.insert(1, ("action", "request_inference"));
        let events = vec![
            event(
                "message",
                &[("action", "/cosmwasm.wasm.v1.MsgExecuteContract")],
            ),
            event("wasm", &wasm),
            event(INFERENCE_REQUESTED, &request_attributes("7")),
        ];
        let requests = InferenceRequested::from_events(&events, PAYOUT).unwrap();
        assert_eq!(
            requests,
            vec![InferenceRequested {
                request_id: 7,
                model_id: 3,
                version: 2,
                payer: "trib1payer".into(),
                prompt_hash: "ab01".into(),
                amount: 1000,
                asset: AssetInfo::native("utrib"),
                contract: PAYOUT.into(),
                height: None,
                tx_hash: None,
                expires_at: Some(1_700_000_000),
            }]
        );
        assert!(InferenceRequested::from_events(&events, "trib1other")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_wasm_event_is_the_fallback_and_cw20_assets_parse() {
        let mut wasm = request_attributes("9");
        wasm.insert(1, ("action", "request_inference"));
        wasm[7] = ("asset", "cw20:trib1token");
        let requests = InferenceRequested::from_events(&[event("wasm", &wasm)], PAYOUT).unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].request_id, 9);
        assert_eq!(requests[0].asset, AssetInfo::cw20("trib1token"));
        let claim = event(
            "wasm",
            &[("_contract_address", PAYOUT), ("action", "claim")],
        );
        assert!(InferenceRequested::from_events(&[claim], PAYOUT)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_malformed_request_event_is_a_decode_error() {
        let mut attributes = request_attributes("x");
        attributes.retain(|(k, _)| *k != "payer");
        let e = InferenceRequested::from_events(&[event(INFERENCE_REQUESTED, &attributes)], PAYOUT);
        assert!(matches!(e, Err(Error::Decode(_))));
    }

    #[test]
    fn websocket_urls_follow_the_rpc_url() {
        assert_eq!(
            websocket_url("http://127.0.0.1:26657").unwrap().to_string(),
            "ws://127.0.0.1:26657/websocket"
        );
        assert_eq!(
            websocket_url("https://rpc.example.org/")
                .unwrap()
                .to_string(),
            "wss://rpc.example.org/websocket"
        );
    }
}
