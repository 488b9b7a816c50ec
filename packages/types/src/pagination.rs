//! Bounded pagination shared by every list query.

/// Page size when a query gives no `limit`.
pub const DEFAULT_LIMIT: u32 = 10;
/// Largest page any list query returns, whatever `limit` asks for.
pub const MAX_LIMIT: u32 = 100;

/// The page size to use for a requested `limit`.
pub fn page_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_defaulted_and_capped() {
        assert_eq!(page_limit(None), DEFAULT_LIMIT as usize);
        assert_eq!(page_limit(Some(0)), 1);
        assert_eq!(page_limit(Some(5)), 5);
        assert_eq!(page_limit(Some(10_000)), MAX_LIMIT as usize);
    }
}
