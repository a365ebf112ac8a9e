//! [`Weights`]: the share of NEW sessions each version of an app receives, in percent.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::VersionId;
use crate::{Error, Result};

/// Percent of new sessions per version. Either empty (nothing routed yet) or summing to exactly 100.
/// Versions absent from the map have weight 0; entries with weight 0 are dropped.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<VersionId, u32>", into = "BTreeMap<VersionId, u32>")]
pub struct Weights(BTreeMap<VersionId, u32>);

impl Weights {
    /// Validates a weight map: each weight 0..=100, sum 100 (or an empty map).
    pub fn new(map: BTreeMap<VersionId, u32>) -> Result<Self> {
        let map: BTreeMap<_, _> = map.into_iter().filter(|(_, w)| *w > 0).collect();
        if let Some((v, w)) = map.iter().find(|(_, w)| **w > 100) {
            return Err(Error::invalid(
                "weights",
                format!("{v} has weight {w}; weights are percentages from 0 to 100"),
            ));
        }
        let sum: u32 = map.values().sum();
        if !map.is_empty() && sum != 100 {
            return Err(Error::invalid("weights", format!("weights sum to {sum}; they must sum to 100")));
        }
        Ok(Weights(map))
    }

    /// All new sessions to one version.
    pub fn all_to(version: VersionId) -> Self {
        Weights(BTreeMap::from([(version, 100)]))
    }

    /// `new_version` gets `percent`, `old_version` the rest.
    pub fn split(new_version: VersionId, percent: u32, old_version: VersionId) -> Result<Self> {
        if new_version == old_version {
            return Err(Error::invalid("weights", "a split needs two different versions"));
        }
        let percent = percent.min(100);
        Weights::new(BTreeMap::from([(new_version, percent), (old_version, 100 - percent)]))
    }

    /// The weight of `version` (0 if absent).
    pub fn get(&self, version: &VersionId) -> u32 {
        self.0.get(version).copied().unwrap_or(0)
    }

    /// Versions with a weight above 0, and their weights.
    pub fn iter(&self) -> impl Iterator<Item = (&VersionId, u32)> {
        self.0.iter().map(|(v, w)| (v, *w))
    }

    /// True when nothing is routed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many versions receive new sessions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The version with the highest weight (ties: the greatest id), if any.
    pub fn primary(&self) -> Option<&VersionId> {
        self.0.iter().max_by_key(|(v, w)| (**w, (*v).clone())).map(|(v, _)| v)
    }
}

impl TryFrom<BTreeMap<VersionId, u32>> for Weights {
    type Error = Error;
    fn try_from(map: BTreeMap<VersionId, u32>) -> Result<Self> {
        Weights::new(map)
    }
}

impl From<Weights> for BTreeMap<VersionId, u32> {
    fn from(w: Weights) -> Self {
        w.0
    }
}

impl fmt::Debug for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("{}");
        }
        let parts: Vec<String> = self.0.iter().map(|(v, w)| format!("{v}={w}%")).collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> VersionId {
        VersionId::new(s).unwrap()
    }

    #[test]
    fn valid_and_invalid() {
        assert!(Weights::new(BTreeMap::from([(v("a"), 60), (v("b"), 40)])).is_ok());
        assert!(Weights::new(BTreeMap::new()).is_ok());
        let e = Weights::new(BTreeMap::from([(v("a"), 60), (v("b"), 30)])).unwrap_err().to_string();
        assert!(e.contains("sum to 90"), "{e}");
        let w = Weights::split(v("b"), 100, v("a")).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w.primary(), Some(&v("b")));
        assert_eq!(w.to_string(), "{b=100%}");
    }
}
