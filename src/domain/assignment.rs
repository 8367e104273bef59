//! Which replica leads which provider (SPEC §8, issue 17): replicas on one
//! PostgreSQL *share* the polling. Every replica computes the same plan from
//! the same facts — the live replicas and each provider's instance count — so
//! no coordination is needed beyond the per-provider leases that make sure a
//! provider never has two leaders while the plan changes hands.
//!
//! The plan is a greedy "largest provider first, to the least-loaded replica"
//! (LPT): balanced by instances to within the largest provider, stable while
//! the membership and the counts are stable (no flapping), and deterministic
//! whatever order the facts arrive in.

use std::collections::BTreeMap;

/// `provider → replica` for these replicas and `(provider, instances)`.
/// Empty when there is no replica.
pub fn assign(replicas: &[String], providers: &[(String, u64)]) -> BTreeMap<String, String> {
    let mut plan = BTreeMap::new();
    let mut replicas: Vec<&String> = replicas.iter().collect();
    replicas.sort();
    replicas.dedup();
    if replicas.is_empty() {
        return plan;
    }
    let mut load: Vec<(u64, &String)> = replicas.iter().map(|r| (0, *r)).collect();
    let mut order: Vec<&(String, u64)> = providers.iter().collect();
    // Largest first; a provider without instances still needs a leader (its
    // discovery may find some), and weighs one.
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    order.dedup_by(|a, b| a.0 == b.0);
    for (provider, n) in order {
        let slot = load.iter_mut().min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))).expect("non-empty");
        slot.0 += (*n).max(1);
        plan.insert(provider.clone(), slot.1.clone());
    }
    plan
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
