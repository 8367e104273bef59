//! The `unauth` scenario: peak memory under unauthenticated large bodies.

use super::*;

/// One POST of `body` with a wrong token: the answer's status, or what
/// happened instead.
pub(crate) async fn hostile_post(port: u16, body: Arc<Vec<u8>>) -> String {
    let stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(e) => return format!("connect failed ({:?})", e.kind()),
    };
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST /webhooks/evo/not-the-token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Write and read at once: a server that answers before the body is in
    // (and then closes) must not leave the writer blocked. The write half is
    // handed back, not dropped: dropping it would half-close the connection,
    // which the server takes for a client gone away.
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(&body).await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let outcome = loop {
        match rd.read(&mut chunk).await {
            Ok(0) => break "closed without an answer".to_string(),
            Err(e) => break format!("{:?} before an answer", e.kind()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() >= 12 {
            break String::from_utf8_lossy(&buf[9..12]).into_owned();
        }
    };
    writer.abort();
    outcome
}

/// Peak RSS of the daemon while `posts` connections at once each post
/// `server.max_body` (2 MiB) to a webhook URL with a wrong token.
pub(crate) async fn unauth(size: &Size, rep: &mut Report) -> Result<()> {
    let posts = size.unauth_posts;
    let body_len = 2 * 1024 * 1024;
    eprintln!("== unauth: {posts} concurrent unauthenticated posts of {body_len} bytes");
    let dir = tempfile::tempdir()?;
    let sim = simulator(1, Duration::ZERO).await?;
    let mut daemon = Daemon::plain(dir.path(), &sim)?;
    let port = daemon.port;
    daemon.ready(1, Duration::from_secs(60)).await?;
    let (_, hwm_before) = memory(daemon.pid());
    let mut pad = br#"{"event":"messages.upsert","instance":"inst-00000","pad":""#.to_vec();
    pad.resize(body_len - 2, b'x');
    pad.extend_from_slice(b"\"}");
    let body = Arc::new(pad);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..posts).map(|_| tokio::spawn(hostile_post(port, body.clone()))).collect();
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let outcome = t.await.unwrap_or_else(|e| format!("task failed: {e}"));
        *codes.entry(outcome).or_default() += 1;
    }
    let took = t0.elapsed().as_secs_f64();
    daemon.check_alive()?;
    let (rss, hwm) = memory(daemon.pid());
    let answers: Vec<String> = codes.iter().map(|(c, n)| format!("{n} × {c}")).collect();
    rep.row(
        format!("unauth: daemon peak RSS (VmHWM), {posts} concurrent 2 MiB posts with a wrong token"),
        format!(
            "{hwm:.1} MiB (before the load {hwm_before:.1} MiB; RSS after {rss:.1} MiB); answers: {}; {took:.1} s",
            answers.join(", ")
        ),
        "—",
        None,
    );
    if codes.keys().any(|c| c.len() == 3 && c != "401") {
        rep.failures.push(format!("unauth: answers other than 401: {}", answers.join(", ")));
    }
    Ok(())
}
