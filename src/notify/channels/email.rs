//! E-mail over SMTP (lettre, rustls): STARTTLS, implicit TLS, or plain (for
//! tests and local relays), optional authentication, several recipients. The
//! subject is one line (a line break in an instance name becomes a space) of
//! at most 200 characters.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::http::DeliveryError;
use super::{Channel, Rendered, clip};
use crate::config::{NotifierTarget, SmtpTls};
use crate::domain::Notice;

pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailChannel {
    pub fn new(target: &NotifierTarget, timeout: Duration) -> Result<Self, DeliveryError> {
        let NotifierTarget::Email { host, port, tls, username, password, from, to } = target else {
            return Err(DeliveryError::permanent("not an email notifier"));
        };
        let bad = |what: &str, e: &dyn std::fmt::Display| DeliveryError::permanent(format!("{what}: {e}"));
        let builder = match tls {
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| bad("smtp_host", &e))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| bad("smtp_host", &e))?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        let mut builder = builder.port(*port).timeout(Some(timeout));
        if let (Some(u), Some(p)) = (username, password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        let from: Mailbox = from.parse().map_err(|e| bad("from", &e))?;
        let to = to.iter().map(|t| t.parse::<Mailbox>().map_err(|e| bad("to", &e))).collect::<Result<Vec<_>, _>>()?;
        Ok(EmailChannel { transport: builder.build(), from, to })
    }
}

/// A subject longer than this is cut: mail clients show far less, and a
/// header line must stay well under SMTP's 998.
const SUBJECT_MAX: usize = 200;

/// `[wa-sentinel] <title>: <who>` on one line: control characters (a line
/// break in an instance name) become spaces, runs of white space one.
fn subject(title: &str, who: &str) -> String {
    let raw = format!("[wa-sentinel] {title}: {who}");
    let line: Vec<&str> = raw.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    clip(&line.join(" "), SUBJECT_MAX)
}

impl Channel for EmailChannel {
    async fn send(&self, notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        let mut msg = Message::builder()
            .from(self.from.clone())
            .subject(subject(&text.title, notice.instance.as_deref().unwrap_or(&notice.provider)))
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            msg = msg.to(t.clone());
        }
        let msg = msg
            .body(format!("{}\n\n--\ndedup key: {}\n", text.body, notice.dedup_key))
            .map_err(|e| DeliveryError::permanent(format!("cannot build the message: {e}")))?;
        self.transport.send(msg).await.map(|_| ()).map_err(|e| DeliveryError::transient(format!("SMTP: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_subject_is_one_short_line() {
        assert_eq!(
            super::subject("Instance down", "shop\r\nBcc: x@y\t 1"),
            "[wa-sentinel] Instance down: shop Bcc: x@y 1"
        );
        let long = super::subject("Instance down", &"n".repeat(500));
        assert_eq!(long.chars().count(), super::SUBJECT_MAX);
    }
}
