//! How providers are shared out among replicas (rule 15 and
//! docs/operations.md "Several replicas"): a greedy "largest provider first,
//! to the least-loaded replica" (LPT), balanced by instances to within the
//! largest provider and deterministic whatever order the facts arrive in.
//! Each provider goes only to a replica that configures it. The plan is not
//! computed by each replica on its own: [`crate::domain::leadership`] keeps one
//! shared version of it, replanned only when the membership changes.

use std::collections::BTreeMap;

/// `provider → replica` for these replicas and `(provider, instances)`, every
/// replica able to lead every provider. Empty when there is no replica.
pub fn assign(replicas: &[String], providers: &[(String, u64)]) -> BTreeMap<String, String> {
    let mut load: BTreeMap<&String, u64> = replicas.iter().map(|r| (r, 0)).collect();
    let all: Vec<&String> = load.keys().copied().collect();
    assign_eligible(&mut load, providers, |_| all.clone(), |_| None).into_iter().collect()
}

/// Give each of `providers` (`(name, weight)`) to the least-loaded replica in
/// `load` that `eligible` allows for it, largest first (ties: the provider's
/// `previous` leader, then by name), adding its weight (at least one: a
/// provider without instances still needs a leader) to that replica's load.
/// A provider nobody is eligible for is left out.
pub fn assign_eligible<'a>(
    load: &mut BTreeMap<&'a String, u64>,
    providers: &[(String, u64)],
    eligible: impl Fn(&str) -> Vec<&'a String>,
    previous: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut order: Vec<&(String, u64)> = providers.iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    order.dedup_by(|a, b| a.0 == b.0);
    let mut out = Vec::new();
    for (provider, n) in order {
        let before = previous(provider);
        let pick = eligible(provider)
            .into_iter()
            .filter(|r| load.contains_key(r))
            .min_by_key(|r| (load[r], before.as_deref() != Some(r.as_str()), *r));
        if let Some(r) = pick {
            *load.get_mut(r).expect("eligible replicas have a load") += (*n).max(1);
            out.push((provider.clone(), r.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn names(n: usize, p: &str) -> Vec<String> {
        (0..n).map(|i| format!("{p}{i}")).collect()
    }

    #[test]
    fn six_equal_providers_over_three_replicas_two_each() {
        let providers: Vec<(String, u64)> = names(6, "p").into_iter().map(|p| (p, 100)).collect();
        let plan = assign(&names(3, "r"), &providers);
        for r in names(3, "r") {
            assert_eq!(plan.values().filter(|v| **v == r).count(), 2, "{plan:?}");
        }
    }

    #[test]
    fn one_replica_leads_everything_and_none_leads_nothing() {
        let providers = vec![("a".to_string(), 3), ("b".to_string(), 0)];
        let plan = assign(&["only".to_string()], &providers);
        assert!(plan.values().all(|r| r == "only") && plan.len() == 2);
        assert!(assign(&[], &providers).is_empty());
    }

    proptest! {
        #[test]
        fn every_provider_has_exactly_one_live_leader_balanced_and_order_free(
            replicas in proptest::collection::btree_set("[a-e]{1,3}", 1..6),
            sizes in proptest::collection::btree_map("[a-z]{1,4}", 0u64..5000, 0..30),
        ) {
            let replicas: Vec<String> = replicas.into_iter().collect();
            let providers: Vec<(String, u64)> = sizes.into_iter().collect();
            let plan = assign(&replicas, &providers);
            prop_assert_eq!(plan.len(), providers.len());
            prop_assert!(plan.values().all(|r| replicas.contains(r)));
            // Balanced: loads differ by at most the largest provider.
            let mut load: BTreeMap<&String, u64> = replicas.iter().map(|r| (r, 0)).collect();
            for (p, n) in &providers {
                *load.get_mut(&plan[p]).unwrap() += (*n).max(1);
            }
            let biggest = providers.iter().map(|p| p.1.max(1)).max().unwrap_or(0);
            let (lo, hi) = (load.values().min().unwrap(), load.values().max().unwrap());
            prop_assert!(hi - lo <= biggest, "{:?}", load);
            // Deterministic whatever the order of the facts.
            let mut rev_r = replicas.clone();
            rev_r.reverse();
            let mut rev_p = providers.clone();
            rev_p.reverse();
            prop_assert_eq!(assign(&rev_r, &rev_p), plan);
        }
    }
}
