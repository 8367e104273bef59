//! Actions from an instance's page: the session's CSRF token, the audit
//! event, and on a replica that does not lead the provider, the request
//! queued for its leader (from the page and from the admin API).

use super::*;

/// Actions need a signed-in session and that session's CSRF
/// token; each goes through the supervisor's path (the cooldown refuses a
/// second restart unless forced; maintenance lands in the state; the webhook
/// config is applied) and is an audit event with the actor and address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_session_csrf_token_and_are_audited() {
    let live = Live::start(&[("shop-main", Behaviour::Open), ("lost-1", Behaviour::LoggedOut)], |r| {
        r.server.public_url = Some("http://sentinel.test".into());
    })
    .await;
    live.sup.poll_cycle().await.unwrap();
    let (me, other) = (session(&live).await, session(&live).await);
    let (code, _, page) = get_page(&live, "/instances/evo/shop-main", Some(&me)).await;
    assert_eq!(code, 200);
    let token = csrf_of(&page);
    let other_token = csrf_of(&get_page(&live, "/instances/evo/shop-main", Some(&other)).await.2);
    assert_ne!(token, other_token, "a token per session");
    let post = |path: &str, cookie: Option<&str>, form: Vec<(&str, String)>| {
        let mut r = no_redirects()
            .post(format!("{}/instances/evo/shop-main/{path}", live.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form));
        r = match cookie {
            Some(c) => r.header("cookie", c.to_string()),
            None => r.basic_auth("admin", Some(ADMIN)),
        };
        r.send()
    };
    let maint = |t: &str| vec![("csrf", t.to_string()), ("duration", "2h".to_string())];
    assert_eq!(post("maintenance", Some(&me), vec![("duration", "2h".into())]).await.unwrap().status().as_u16(), 403);
    assert_eq!(post("maintenance", Some(&me), maint(&other_token)).await.unwrap().status().as_u16(), 403);
    assert_eq!(post("maintenance", None, maint(&token)).await.unwrap().status().as_u16(), 403, "Basic: look only");
    let key = wa_sentinel::domain::InstanceKey::new("evo", "shop-main");
    assert!(live.store.instance(&key).await.unwrap().unwrap().state.maintenance_until.is_none(), "nothing done");

    let done = post("maintenance", Some(&me), maint(&token)).await.unwrap();
    assert_eq!(done.status().as_u16(), 303);
    let back = done.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with("/instances/evo/shop-main?action="), "{back}");
    let until = live.store.instance(&key).await.unwrap().unwrap().state.maintenance_until.expect("in maintenance");
    assert!(until.0 - live.sup.now().0 > 7_100_000, "two hours");
    let (_, _, shown) = get_page(&live, &back, Some(&me)).await;
    assert!(
        shown.contains("<div class=\"note ok\"><b>maintenance</b> done: evo/shop-main: in maintenance until"),
        "{shown}"
    );
    assert!(shown.contains("End maintenance"), "{shown}");

    let restart = |force: bool| {
        let mut f = vec![("csrf", token.clone())];
        if force {
            f.push(("force", "1".into()));
        }
        post("restart", Some(&me), f)
    };
    let first = restart(false).await.unwrap();
    assert_eq!(first.status().as_u16(), 303);
    let (_, _, p) = get_page(&live, first.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> done:"), "{p}");
    let second = restart(false).await.unwrap();
    let (_, _, p) = get_page(&live, second.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> refused:") && p.contains("cooldown"), "{p}");
    let forced = restart(true).await.unwrap();
    let (_, _, p) = get_page(&live, forced.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> done:"), "{p}");
    let hook = post("webhook", Some(&me), vec![("csrf", token.clone())]).await.unwrap();
    let (_, _, p) = get_page(&live, hook.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>webhook</b> done: evo/shop-main: webhook config"), "{p}");
    let off = post("maintenance", Some(&me), vec![("csrf", token.clone()), ("off", "1".into())]).await.unwrap();
    assert_eq!(off.status().as_u16(), 303);
    assert!(live.store.instance(&key).await.unwrap().unwrap().state.maintenance_until.is_none());

    // The audit log: one operator_action per action, with actor and address.
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let events = live.store.events(&rec.id, 100).await.unwrap();
    let actions: Vec<Value> = events
        .iter()
        .filter(|e| e.kind == "operator_action")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    let summary: Vec<(String, String)> = actions
        .iter()
        .rev()
        .map(|a| (a["action"].as_str().unwrap().to_string(), a["outcome"].as_str().unwrap().to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = summary.iter().map(|(a, o)| (a.as_str(), o.as_str())).collect();
    assert_eq!(
        pairs,
        vec![
            ("maintenance", "done"),
            ("restart", "done"),
            ("restart", "refused"),
            ("restart", "done"),
            ("webhook", "done"),
            ("maintenance", "done")
        ]
    );
    assert!(actions.iter().all(|a| a["actor"] == "status page" && a["address"] == "127.0.0.1"), "{actions:?}");
    assert_eq!(actions[2]["force"], true, "newest first: the forced restart");
    assert!(events.iter().any(|e| e.kind == "manual_restart"), "the supervisor's own path ran");
    assert!(events.iter().any(|e| e.kind == "maintenance"));
}

/// A second supervisor on `live`'s database that leads every provider (no
/// replica leases): the leader a follower's requests go to.
fn leader_of(live: &Live) -> std::sync::Arc<wa_sentinel::supervisor::Supervisor> {
    wa_sentinel::supervisor::Supervisor::new(
        std::sync::Arc::new(live.sup.config().clone()),
        live.store.clone(),
        None,
        std::sync::Arc::new(wa_sentinel::clock::now),
    )
    .unwrap()
}

/// Replicas: on a replica that does not lead the provider, a
/// restart from the page is recorded (`queued`) and nothing is sent; the
/// provider's leader carries it out at its next cycle and audits the outcome
/// with the page's actor and address. Maintenance is done at once anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_queues_provider_actions_for_the_leader() {
    use std::sync::Arc;
    use wa_sentinel::supervisor::scheduler::Ticks;

    let live = Live::start(&[("shop-main", Behaviour::Open)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    live.sup.attach_ticks(Arc::new(Ticks::default()));
    assert!(!live.sup.leads("evo"), "this replica now leads nothing");
    let me = session(&live).await;
    let token = csrf_of(&get_page(&live, "/instances/evo/shop-main", Some(&me)).await.2);
    let post = |path: &str, form: Vec<(&str, String)>| {
        no_redirects()
            .post(format!("{}/instances/evo/shop-main/{path}", live.base))
            .header("cookie", me.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form))
            .send()
    };
    let restarts = || live.sim.calls("POST", "/instance/restart/shop-main");
    let r = post("restart", vec![("csrf", token.clone())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (_, _, p) = get_page(&live, r.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> queued: this replica does not lead provider `evo`"), "{p}");
    assert_eq!(restarts(), 0, "a follower never calls the provider");
    let m = post("maintenance", vec![("csrf", token.clone()), ("duration", "30m".into())]).await.unwrap();
    let (_, _, p) = get_page(&live, m.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>maintenance</b> done:"), "maintenance needs no provider call: {p}");

    // The leader carries the request out at the start of its cycle.
    let leader = leader_of(&live);
    leader.poll_cycle().await.unwrap();
    assert_eq!(restarts(), 1, "sent once, by the leader");
    assert_eq!(leader.run_requested_actions("evo").await.unwrap(), 0, "taken once");
    let key = wa_sentinel::domain::InstanceKey::new("evo", "shop-main");
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let events = live.store.events(&rec.id, 50).await.unwrap();
    let done: Vec<Value> = events
        .iter()
        .filter(|e| e.kind == "operator_action")
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap())
        .filter(|d| d["action"] == "restart")
        .collect();
    assert_eq!(done.len(), 2, "queued on the follower, done on the leader: {done:?}");
    assert_eq!(done[0]["outcome"], "done");
    assert_eq!((done[0]["actor"].as_str(), done[0]["address"].as_str()), (Some("status page"), Some("127.0.0.1")));
    assert_eq!(done[1]["outcome"], "queued");
    let (_, _, p) = get_page(&live, "/instances/evo/shop-main", Some(&me)).await;
    assert!(p.contains("via: request from a replica that does not lead the provider"), "on the timeline: {p}");

    // A request nobody took in time expires instead of restarting late.
    let old = wa_sentinel::store::ActionRequest {
        id: "old".into(),
        instance_id: rec.id.clone(),
        provider: "evo".into(),
        action: "restart".into(),
        force: true,
        actor: "status page".into(),
        address: "127.0.0.1".into(),
        requested_at: live.sup.now().0 - 6 * 60_000,
    };
    live.store.request_action(&old).await.unwrap();
    assert_eq!(leader.run_requested_actions("evo").await.unwrap(), 0);
    assert_eq!(restarts(), 1, "expired, not sent");
}

/// The admin API's restart follows the same rule as the page: a replica that
/// does not lead the provider never calls it, it records the request (202)
/// and the leader carries it out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_restart_on_a_follower_is_queued_for_the_leader() {
    use std::sync::Arc;
    use wa_sentinel::supervisor::scheduler::Ticks;

    let live = Live::start(&[("shop-main", Behaviour::Open)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    live.sup.attach_ticks(Arc::new(Ticks::default()));
    assert!(!live.sup.leads("evo"));
    let restarts = || live.sim.calls("POST", "/instance/restart/shop-main");
    let r = live
        .http
        .post(format!("{}/api/instances/evo/shop-main/restart", live.base))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"], "queued", "{body}");
    assert_eq!(restarts(), 0, "a follower never calls the provider");
    let leader = leader_of(&live);
    leader.poll_cycle().await.unwrap();
    assert_eq!(restarts(), 1, "sent once, by the leader");
    let key = wa_sentinel::domain::InstanceKey::new("evo", "shop-main");
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let events = live.store.events(&rec.id, 50).await.unwrap();
    let by_api: Vec<Value> = events
        .iter()
        .filter(|e| e.kind == "operator_action")
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap())
        .filter(|d| d["actor"] == "api")
        .collect();
    assert_eq!(by_api.len(), 1, "{by_api:?}");
    assert_eq!(by_api[0]["outcome"], "done", "{by_api:?}");
}
