//! The rule every contract's `migrate` applies: same contract, never a downgrade.

use thiserror::Error;

/// Why a migration is refused.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum UpgradeError {
    #[error("cannot migrate from contract {stored} to {expected}")]
    WrongContract { stored: String, expected: String },
    #[error("cannot migrate from version {stored} to older version {new}")]
    Downgrade { stored: String, new: String },
    #[error("version {version} is not semver")]
    BadVersion { version: String },
}

/// Checks a migration from `(stored_name, stored_version)` to `(name, version)`.
/// Migrating to the same version is allowed (it re-runs the migration, which must be idempotent).
pub fn check_upgrade(
    stored_name: &str,
    stored_version: &str,
    name: &str,
    version: &str,
) -> Result<(), UpgradeError> {
    if stored_name != name {
        return Err(UpgradeError::WrongContract {
            stored: stored_name.to_string(),
            expected: name.to_string(),
        });
    }
    let parse = |v: &str| {
        semver::Version::parse(v).map_err(|_| UpgradeError::BadVersion {
            version: v.to_string(),
        })
    };
    if parse(version)? < parse(stored_version)? {
        return Err(UpgradeError::Downgrade {
            stored: stored_version.to_string(),
            new: version.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_pass_and_downgrades_or_other_contracts_fail() {
        assert_eq!(check_upgrade("a", "0.1.0", "a", "0.2.0"), Ok(()));
        assert_eq!(check_upgrade("a", "0.1.0", "a", "0.1.0"), Ok(()));
        assert!(matches!(
            check_upgrade("a", "0.2.0", "a", "0.1.9"),
            Err(UpgradeError::Downgrade { .. })
        ));
        assert!(matches!(
            check_upgrade("b", "0.1.0", "a", "0.2.0"),
            Err(UpgradeError::WrongContract { .. })
        ));
        assert!(matches!(
            check_upgrade("a", "one", "a", "0.2.0"),
            Err(UpgradeError::BadVersion { .. })
        ));
    }
}
