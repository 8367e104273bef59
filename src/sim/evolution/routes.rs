//! The Evolution simulator's routes: one handler that counts the call,
//! injects the server's faults, checks the key the way Evolution does (the
//! instance-existence guard first), and answers each route with Evolution's
//! own shapes and quirks.

use super::*;

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn evo_error(status: u16, phrase: &str, message: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(code, json!({"status": status, "error": phrase, "response": {"message": message}}))
}

pub(super) async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: HeaderMap = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let (latency, down, fail) = {
        let mut g = lock(&shared);
        *g.calls.entry((method.clone(), path.clone())).or_insert(0) += 1;
        let fail = g.failure_rate > 0.0 && g.roll() < g.failure_rate;
        (g.latency, g.down, fail)
    };
    if let Some(outage) = super::super::server::delay_or_outage(latency, down).await {
        return outage;
    }
    if fail {
        return evo_error(500, "Internal Server Error", json!(["Error: Connection Closed"]));
    }
    let key = headers.get("apikey").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(pct_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let ("POST", ["message", "sendText", name]) = (method.as_str(), segs.as_slice()) {
        let (resp, delay) = send_text(&mut lock(&shared), name, &key, &body);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        return resp;
    }
    let mut g = lock(&shared);
    if g.unlicensed && !segs.is_empty() {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": 503, "code": "LICENSE_REQUIRED", "message": "This installation is not activated"}),
        );
    }
    let not_found_route = || evo_error(404, "Not Found", json!([format!("Cannot {method} {path}")]));
    match (method.as_str(), segs.as_slice()) {
        ("GET", []) => reply(
            StatusCode::OK,
            json!({"status": 200, "message": "Welcome to the Evolution API, it is working!", "version": g.version,
                   "clientName": "evolution", "documentation": "https://doc.evolution-api.com",
                   "whatsappWebVersion": "2.3000.1028450369"}),
        ),
        ("GET", ["instance", "fetchInstances"]) => {
            if key != g.api_key {
                return evo_error(401, "Unauthorized", json!("Unauthorized"));
            }
            let wanted = query_param(&query, "instanceName");
            if let Some(w) = &wanted
                && !g.instances.contains_key(w)
            {
                return evo_error(404, "Not Found", json!([format!("Instance \"{w}\" not found")]));
            }
            let rows: Vec<Value> = g
                .instances
                .iter()
                .filter(|(n, _)| wanted.as_ref().is_none_or(|w| w == *n))
                .map(|(n, i)| {
                    json!({"id": i.id, "name": n, "connectionStatus": i.behaviour.db_status(),
                           "ownerJid": (i.behaviour != Behaviour::Unpaired).then_some("5511987654321@s.whatsapp.net"),
                           "integration": "WHATSAPP-BAILEYS",
                           "token": i.token, "clientName": "evolution",
                           "disconnectionReasonCode": i.behaviour.terminal_code(),
                           "disconnectionObject": null, "disconnectionAt": null})
                })
                .collect();
            reply(StatusCode::OK, Value::Array(rows))
        }
        ("POST", ["chat", "findMessages", name]) => {
            let global = g.api_key.clone();
            let Some(inst) = g.instances.get(*name) else {
                return evo_error(404, "Not Found", json!([format!("The \"{name}\" instance does not exist")]));
            };
            if key != global && key != inst.token {
                return evo_error(401, "Unauthorized", json!("Unauthorized"));
            }
            find_messages(&g, name, &body)
        }
        (m, [res @ ("instance" | "webhook"), action, name]) => {
            let known = matches!(
                (m, *res, *action),
                ("GET", "instance", "connectionState" | "connect")
                    | ("POST", "instance", "restart")
                    | ("GET", "webhook", "find")
                    | ("POST", "webhook", "set")
            );
            if !known {
                return not_found_route();
            }
            let global = g.api_key.clone();
            // Existence is checked before auth (Evolution's guard order).
            let Some(inst) = g.instances.get(*name) else {
                return evo_error(404, "Not Found", json!([format!("The \"{name}\" instance does not exist")]));
            };
            if key != global && key != inst.token {
                return evo_error(401, "Unauthorized", json!("Unauthorized"));
            }
            let number = query_param(&query, "number").filter(|n| !n.is_empty());
            let text = g.qr_as_text;
            let inst = g.instances.get_mut(*name).expect("checked above");
            instance_route(inst, name, res, action, &body, number, text)
        }
        _ => not_found_route(),
    }
}

fn state_body(name: &str, state: &str) -> Value {
    json!({"instance": {"instanceName": name, "state": state}})
}

/// A QR object as connect answers it: `base64` (a PNG data URL) and `code`,
/// with a `pairingCode` when the socket was started with a number.
fn qr_body(inst: &SimInstance, text_only: bool) -> Value {
    let mut v = json!({"pairingCode": inst.pairing_number.as_ref().map(|_| SIM_PAIRING_CODE), "code": SIM_QR_TEXT,
                       "base64": sim_qr_data_url(), "count": 1});
    if text_only && let Some(m) = v.as_object_mut() {
        m.remove("base64");
    }
    v
}

fn instance_route(
    inst: &mut SimInstance,
    name: &str,
    res: &str,
    action: &str,
    body: &[u8],
    number: Option<String>,
    text_only: bool,
) -> Response {
    match (res, action) {
        ("instance", "connectionState") if inst.behaviour == Behaviour::Broken => {
            evo_error(500, "Internal Server Error", json!(["Connection Closed"]))
        }
        ("instance", "connectionState") => reply(StatusCode::OK, state_body(name, inst.behaviour.state())),
        ("instance", "connect") => match inst.behaviour {
            Behaviour::ClosedTransient { .. } | Behaviour::Replaced => {
                inst.behaviour = Behaviour::Open;
                reply(StatusCode::OK, state_body(name, "open"))
            }
            // A closed socket starts (in pairing mode with `?number=`); a
            // connecting one ignores the number and answers its current QR.
            Behaviour::LoggedOut | Behaviour::Banned => {
                inst.behaviour = Behaviour::ConnectingWithQr;
                inst.pairing_number = number;
                reply(StatusCode::OK, qr_body(inst, text_only))
            }
            Behaviour::ConnectingWithQr => reply(StatusCode::OK, qr_body(inst, text_only)),
            Behaviour::Unpaired => {
                if inst.pairing_number.is_none() {
                    inst.pairing_number = number;
                }
                reply(StatusCode::OK, qr_body(inst, text_only))
            }
            Behaviour::ReconnectLoop => reply(StatusCode::OK, state_body(name, "connecting")),
            Behaviour::Open | Behaviour::ZombieOpen => reply(StatusCode::OK, state_body(name, "open")),
            Behaviour::Broken => evo_error(500, "Internal Server Error", json!(["Connection Closed"])),
        },
        ("instance", "restart") => match inst.behaviour {
            // The state update is asynchronous in v2: the answer still says open.
            Behaviour::Open | Behaviour::ZombieOpen => {
                inst.behaviour = Behaviour::Open;
                reply(StatusCode::OK, state_body(name, "open"))
            }
            Behaviour::ConnectingWithQr => reply(StatusCode::OK, json!({"count": 0})),
            _ => reply(StatusCode::OK, json!({"error": true, "message": "[object Object]"})),
        },
        ("webhook", "find") => reply(StatusCode::OK, inst.webhook.clone().unwrap_or(Value::Null)),
        ("webhook", "set") => webhook_set(inst, body),
        _ => evo_error(404, "Not Found", json!([format!("Cannot handle {res}/{action}")])),
    }
}

fn webhook_set(inst: &mut SimInstance, body: &[u8]) -> Response {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return evo_error(400, "Bad Request", json!(["Unexpected token in JSON"])),
    };
    let Some(w) = parsed.get("webhook").and_then(Value::as_object) else {
        return evo_error(400, "Bad Request", json!([["instance requires property \"webhook\""]]));
    };
    let Some(enabled) = w.get("enabled").and_then(Value::as_bool) else {
        return evo_error(400, "Bad Request", json!([["webhook requires property \"enabled\""]]));
    };
    let url = match w.get("url").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => {
            return evo_error(400, "Bad Request", json!([["webhook requires property \"url\""]]));
        }
    };
    let events: Option<Vec<String>> = w
        .get("events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect());
    if enabled && events.is_none() {
        return evo_error(
            500,
            "Internal Server Error",
            json!("Cannot read properties of undefined (reading 'length')"),
        );
    }
    let events = events.unwrap_or_default();
    if let Some((i, _)) = events.iter().enumerate().find(|(_, e)| !V2_EVENTS.contains(&e.as_str())) {
        return evo_error(
            400,
            "Bad Request",
            json!([[format!("webhook.events[{i}] is not one of enum values: {}", V2_EVENTS.join(","))]]),
        );
    }
    let prev = inst.webhook.as_ref();
    // Omitted fields keep their old values (Prisma upsert).
    let keep = |k_in: &str, k_row: &str, default: Value| {
        w.get(k_in).cloned().or_else(|| prev.and_then(|p| p.get(k_row)).cloned()).unwrap_or(default)
    };
    let stored_events: Vec<String> = match (enabled, events.is_empty()) {
        (false, _) => Vec::new(),
        // `events: []` is stored as the full list.
        (true, true) => V2_EVENTS.iter().map(|s| s.to_string()).collect(),
        (true, false) => events,
    };
    let row = json!({
        "id": "cmh0sim0000000000000000",
        "url": url,
        "headers": keep("headers", "headers", json!({})),
        "enabled": enabled,
        "events": stored_events,
        "webhookByEvents": keep("byEvents", "webhookByEvents", json!(false)),
        "webhookBase64": keep("base64", "webhookBase64", json!(false)),
        "createdAt": "2025-10-20T12:01:03.552Z",
        "updatedAt": "2025-10-22T14:05:10.871Z",
        "instanceId": inst.id,
    });
    inst.webhook = Some(row.clone());
    reply(StatusCode::CREATED, row)
}

/// `POST /message/sendText/{name}`: the answer, and how long to hold it back.
fn send_text(g: &mut Inner, name: &str, key: &str, body: &[u8]) -> (Response, Duration) {
    if g.unlicensed {
        let r = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": 503, "code": "LICENSE_REQUIRED", "message": "This installation is not activated"}),
        );
        return (r, Duration::ZERO);
    }
    let (global, v1) = (g.api_key.clone(), g.version.starts_with('1'));
    let Some(inst) = g.instances.get(name) else {
        return (
            evo_error(404, "Not Found", json!([format!("The \"{name}\" instance does not exist")])),
            Duration::ZERO,
        );
    };
    if key != global && key != inst.token {
        return (evo_error(401, "Unauthorized", json!("Unauthorized")), Duration::ZERO);
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return (evo_error(400, "Bad Request", json!(["Unexpected token in JSON"])), Duration::ZERO);
    };
    // Each version's schema: a body of the other version is refused (a cheap version probe).
    let (field, text) = if v1 {
        ("textMessage", parsed.pointer("/textMessage/text").and_then(Value::as_str))
    } else {
        ("text", parsed.get("text").and_then(Value::as_str))
    };
    let (Some(number), Some(text)) = (parsed.get("number").and_then(Value::as_str), text) else {
        let missing = if parsed.get("number").is_none() { "number" } else { field };
        return (
            evo_error(400, "Bad Request", json!([[format!("instance requires property \"{missing}\"")]])),
            Duration::ZERO,
        );
    };
    if text.trim().is_empty() {
        return (evo_error(400, "Bad Request", json!(["Text is required"])), Duration::ZERO);
    }
    if inst.behaviour.state() != "open" {
        return (evo_error(400, "Bad Request", json!(["Error: Connection Closed"])), Duration::ZERO);
    }
    let instance_id = inst.id.clone();
    g.seq += 1;
    let id = format!("3EB0{:036X}", g.seq);
    let at = crate::clock::now();
    let jid = if number.contains('@') { number.to_string() } else { format!("{number}@s.whatsapp.net") };
    g.sent.push(SimMessage {
        instance: name.to_string(),
        to: number.to_string(),
        text: text.to_string(),
        id: id.clone(),
        at,
        queued: false,
    });
    let body = if v1 {
        json!({"key": {"remoteJid": jid, "fromMe": true, "id": id},
               "message": {"extendedTextMessage": {"text": text}},
               "messageTimestamp": (at.0 / 1000).to_string(), "status": "PENDING"})
    } else {
        json!({"key": {"remoteJid": jid, "fromMe": true, "id": id}, "pushName": "Você", "status": "PENDING",
               "message": {"conversation": text}, "messageType": "conversation",
               "messageTimestamp": at.0 / 1000, "instanceId": instance_id, "source": "unknown"})
    };
    (reply(StatusCode::CREATED, body), g.send_delay)
}

/// `POST /chat/findMessages/{name}` (v2): `where.key.id`, `where.key.remoteJid`,
/// `where.key.fromMe` and `where.messageTimestamp.gte/lte` (ISO), newest
/// first, `offset` per page. Nothing is found while message storage is off.
fn find_messages(g: &Inner, name: &str, body: &[u8]) -> Response {
    let q: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let key = q.pointer("/where/key");
    let want_id = key.and_then(|k| k.get("id")).and_then(Value::as_str);
    let want_jid = key.and_then(|k| k.get("remoteJid")).and_then(Value::as_str);
    let from_me = key.and_then(|k| k.get("fromMe")).and_then(Value::as_bool);
    let bound = |which: &str| {
        q.pointer(&format!("/where/messageTimestamp/{which}"))
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
    };
    let (gte, lte) = (bound("gte"), bound("lte"));
    let inst_id = g.instances.get(name).map(|i| i.id.clone()).unwrap_or_default();
    let page = usize::try_from(q.get("offset").and_then(Value::as_u64).unwrap_or(50)).unwrap_or(50).max(1);
    let records: Vec<Value> = g
        .sent
        .iter()
        .rev()
        .filter(|m| g.store_messages && m.instance == name && from_me != Some(false))
        .filter(|m| {
            let jid = if m.to.contains('@') { m.to.clone() } else { format!("{}@s.whatsapp.net", m.to) };
            want_id.is_none_or(|w| w == m.id)
                && want_jid.is_none_or(|w| w == jid)
                && gte.is_none_or(|t| m.at.0 >= t - 999)
                && lte.is_none_or(|t| m.at.0 <= t + 999)
        })
        .map(|m| {
            let jid = if m.to.contains('@') { m.to.clone() } else { format!("{}@s.whatsapp.net", m.to) };
            json!({"id": format!("cm{:022x}", m.at.0), "key": {"id": m.id, "fromMe": true, "remoteJid": jid},
                   "pushName": "Você", "messageType": "conversation", "message": {"conversation": m.text},
                   "messageTimestamp": m.at.0 / 1000, "instanceId": inst_id, "source": "unknown",
                   "contextInfo": null, "MessageUpdate": [{"status": "SERVER_ACK"}]})
        })
        .collect();
    let total = records.len();
    let shown: Vec<Value> = records.into_iter().take(page).collect();
    reply(
        StatusCode::OK,
        json!({"messages": {"total": total, "pages": total.div_ceil(page), "currentPage": 1, "records": shown}}),
    )
}
