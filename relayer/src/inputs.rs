//! How a bonded verifier reads a request's prompt and completion from an attestor's gateway
//! before any dispute, so that recomputing a packet does not make its prompt public:
//!
//! ```text
//! GET /v1/requests/{request_id}/inputs
//! x-tributary-verifier-key:       <hex compressed secp256k1 public key>
//! x-tributary-verifier-time:      <unix seconds>
//! x-tributary-verifier-signature: <hex r || s over the message below>
//! ```
//!
//! The message is [`proof_message`]: the gateway's attestor address, the request id and the
//! time, so a proof is good for one request at one attestor for [`PROOF_WINDOW_SECONDS`]
//! either side of the chain's time. The gateway answers only an account that holds at least
//! the payout contract's `min_verifier_bond`.

use serde::{Deserialize, Serialize};
use tributary_client::Signer;

/// How far a proof's time may be from the chain's latest block time.
pub const PROOF_WINDOW_SECONDS: u64 = 120;

pub const KEY_HEADER: &str = "x-tributary-verifier-key";
pub const TIME_HEADER: &str = "x-tributary-verifier-time";
pub const SIGNATURE_HEADER: &str = "x-tributary-verifier-signature";

/// A request's prompt and completion as the attestor served them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestInputs {
    pub request_id: u64,
    pub prompt: String,
    /// The completion's bytes, hex (the engine's `completion_hex`).
    pub completion_hex: String,
}

/// A verifier's proof of holding its key, for one request at one attestor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierProof {
    pub public_key: Vec<u8>,
    pub time: u64,
    pub signature: Vec<u8>,
}

/// The bytes a verifier signs to read `request_id`'s inputs from `attestor`'s gateway.
pub fn proof_message(attestor: &str, request_id: u64, time: u64) -> Vec<u8> {
    format!("tributary-verifier-inputs\n{attestor}\n{request_id}\n{time}").into_bytes()
}

impl VerifierProof {
    /// `signer`'s proof for `request_id` at `attestor`, made at `time`.
    pub fn sign(
        signer: &Signer,
        attestor: &str,
        request_id: u64,
        time: u64,
    ) -> Result<Self, tributary_client::Error> {
        Ok(VerifierProof {
            public_key: signer.public_key().to_bytes(),
            time,
            signature: signer.sign_message(&proof_message(attestor, request_id, time))?,
        })
    }

    /// The headers that carry the proof.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (KEY_HEADER, hex(&self.public_key)),
            (TIME_HEADER, self.time.to_string()),
            (SIGNATURE_HEADER, hex(&self.signature)),
        ]
    }

    /// The proof in `get(name)`'s headers, or why there is none.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, String> {
        let field = |name: &str| get(name).ok_or_else(|| format!("missing header {name}"));
        let bytes = |name: &str| {
            let value = field(name)?;
            unhex(value).ok_or_else(|| format!("header {name} is not hex"))
        };
        Ok(VerifierProof {
            public_key: bytes(KEY_HEADER)?,
            time: field(TIME_HEADER)?
                .parse()
                .map_err(|_| format!("header {TIME_HEADER} is not unix seconds"))?,
            signature: bytes(SIGNATURE_HEADER)?,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_survives_its_headers() {
        let signer = Signer::random("trib").unwrap();
        let proof = VerifierProof::sign(&signer, "trib1attestor", 7, 1_000).unwrap();
        let headers = proof.headers();
        let parsed = VerifierProof::from_headers(|name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(parsed, proof);
        assert!(VerifierProof::from_headers(|_| None).is_err());
        assert!(VerifierProof::from_headers(|_| Some("zz")).is_err());
    }
}
