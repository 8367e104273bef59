//! The load generator: pre-built keep-alive HTTP/1.1 requests on raw connections, closed-loop or paced.

use super::*;

#[derive(Default)]
pub(crate) struct Load {
    pub(crate) ok: u64,
    pub(crate) non2xx: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: f64,
    /// Per-request latency, µs.
    pub(crate) lat_us: Vec<u32>,
}

impl Load {
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed
    }

    pub(crate) fn merge(&mut self, o: Load) {
        self.ok += o.ok;
        self.non2xx += o.non2xx;
        self.errors += o.errors;
        self.lat_us.extend(o.lat_us);
    }

    pub(crate) fn latency_ms(&self) -> (f64, f64, f64) {
        let mut v: Vec<f64> = self.lat_us.iter().map(|u| f64::from(*u) / 1000.0).collect();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 50.0), percentile(&v, 99.0), v.last().copied().unwrap_or(f64::NAN))
    }
}

/// A messages.upsert body shaped like the fixture, for `instance`.
pub(crate) fn upsert_body(instance: &str, n: usize) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    v["instance"] = json!(instance);
    v["data"]["key"]["id"] = json!(format!("3EB0{n:016X}"));
    serde_json::to_vec(&v).expect("serialises")
}

pub(crate) fn http_request(port: u16, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /webhooks/evo/{WEBHOOK_TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Pre-built requests: one per instance name, rotating.
pub(crate) fn requests(port: u16, instances: &[String]) -> Arc<Vec<Vec<u8>>> {
    Arc::new(instances.iter().enumerate().map(|(i, n)| http_request(port, &upsert_body(n, i))).collect())
}

/// One keep-alive HTTP/1.1 connection: send, read the whole response.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn open(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Send one request; the response status.
    pub(crate) async fn call(&mut self, req: &[u8]) -> std::io::Result<u16> {
        self.stream.write_all(req).await?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(std::io::Error::other)?;
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status line"))?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let total = end + 4 + len;
                while self.buf.len() < total {
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(bad("closed mid-body"));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                self.buf.drain(..total);
                return Ok(status);
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

pub(crate) fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Closed loop (`rate = None`: each connection sends as soon as its previous
/// answer is in) or paced (`rate`: requests/s in total, spread evenly over the
/// connections; latency is measured from the actual send).
pub(crate) async fn load(port: u16, reqs: Arc<Vec<Vec<u8>>>, conns: usize, dur: Duration, rate: Option<f64>) -> Load {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let reqs = reqs.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Load::default();
            let mut conn = None;
            let mut k = c;
            let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
            let mut next = interval.map(|i| tokio::time::Instant::from_std(start) + i.mul_f64(c as f64 / conns as f64));
            loop {
                if let (Some(n), Some(i)) = (next.as_mut(), interval) {
                    tokio::time::sleep_until(*n).await;
                    *n += i;
                }
                if Instant::now() >= deadline {
                    break;
                }
                if conn.is_none() {
                    match Conn::open(port).await {
                        Ok(cn) => conn = Some(cn),
                        Err(_) => {
                            out.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let cn = conn.as_mut().expect("connected");
                let t0 = Instant::now();
                match cn.call(&reqs[k % reqs.len()]).await {
                    Ok(s) if (200..300).contains(&s) => {
                        out.ok += 1;
                        out.lat_us.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                    Ok(_) => out.non2xx += 1,
                    Err(_) => {
                        out.errors += 1;
                        conn = None;
                    }
                }
                k += conns;
            }
            out
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        if let Ok(l) = t.await {
            total.merge(l);
        }
    }
    total.elapsed = start.elapsed().as_secs_f64();
    total
}
