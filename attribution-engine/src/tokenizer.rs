//! The byte tokenizer: every byte is a token, plus one beginning-of-document token.
//!
//! Bytes need no training, never fail on any input (man pages, source code, any language)
//! and make the model's vocabulary part of the protocol rather than of a trained artifact.

/// Token that starts every document.
pub const BOS: u32 = 256;
/// Bytes plus [`BOS`].
pub const VOCAB_SIZE: usize = 257;

/// Tokens of `text`: its bytes.
pub fn encode(text: &[u8]) -> Vec<u32> {
    text.iter().map(|&b| b as u32).collect()
}

/// A document's tokens: [`BOS`] then its bytes.
pub fn encode_document(text: &[u8]) -> Vec<u32> {
    let mut tokens = Vec::with_capacity(text.len() + 1);
    tokens.push(BOS);
    tokens.extend(text.iter().map(|&b| b as u32));
    tokens
}

/// Bytes of `tokens`, skipping [`BOS`].
pub fn decode(tokens: &[u32]) -> Vec<u8> {
    tokens
        .iter()
        .filter(|&&t| t < 256)
        .map(|&t| t as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&bytes)), bytes);
        assert_eq!(decode(&encode_document(b"man 2 open")), b"man 2 open");
        assert_eq!(encode_document(b"a")[0], BOS);
    }
}
