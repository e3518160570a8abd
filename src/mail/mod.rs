//! Email: message templates, iCalendar invitations, and the outbox worker that delivers
//! queued messages through a transport (a directory of `.eml` files, or SMTP) with retry
//! and back-off. Messages are queued by the store in the same transaction as the change
//! that causes them; this module never holds a database transaction across delivery.

pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use crate::config::{MailTransportKind, Settings};
use crate::domain::OutboxMessage;
use crate::store::blobs::Blobs;
use crate::store::DynStore;

/// How long one delivery may take (the SMTP timeout).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a claimed message is reserved for this worker: four times the longest a
/// delivery can take, so no other worker sends it meanwhile. Messages are claimed one at
/// a time, so a lease never waits behind other deliveries.
const LEASE: chrono::Duration = chrono::Duration::seconds(120);

enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// The outbox worker. One per process; several processes may share a PostgreSQL outbox
/// (claims are leased, so a message is not sent twice by two workers).
pub struct Mailer {
    store: DynStore,
    /// Where the letters attached to messages are kept.
    blobs: Blobs,
    transport: Transport,
    from: Mailbox,
    poll: Duration,
    retry_base: Duration,
    retry_max: Duration,
    wake: Arc<Notify>,
}

impl Mailer {
    /// Start-up: builds the configured transport (creating the file outbox directory).
    pub fn new(settings: &Settings, store: DynStore, wake: Arc<Notify>) -> anyhow::Result<Self> {
        let transport = match settings.mail.transport {
            MailTransportKind::File => {
                let dir = settings.data.dir.join("outbox");
                std::fs::create_dir_all(&dir)?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            MailTransportKind::Smtp => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(
                    settings.mail.smtp_url.expose_secret(),
                )
                .map_err(|e| anyhow::anyhow!("mail.smtp_url: {e}"))?
                .timeout(Some(Duration::from_secs(30)))
                .build(),
            ),
        };
        Ok(Self {
            store,
            blobs: Blobs::new(&settings.data.dir)?,
            transport,
            from: settings.mail.from.parse()?,
            poll: Duration::from_millis(settings.mail.poll_interval_ms),
            retry_base: Duration::from_millis(settings.mail.retry_base_ms),
            retry_max: Duration::from_secs(settings.mail.retry_max_seconds),
            wake,
        })
    }

    /// Runs forever: delivers what is due, then sleeps until woken or the poll interval.
    pub async fn run(self) {
        loop {
            match self.deliver_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Delivers due messages one claim at a time; returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, crate::store::StoreError> {
        let mut attempted = 0;
        loop {
            let now = Utc::now();
            let Some(message) = self.store.claim_due_messages(now, now + LEASE, 1).await?.pop()
            else {
                return Ok(attempted);
            };
            attempted += 1;
            let outcome = match tokio::time::timeout(SEND_TIMEOUT, self.send(&message)).await {
                Ok(result) => result,
                Err(_) => Err("delivery timed out".to_string()),
            };
            let recorded = match outcome {
                Ok(()) => self.store.message_sent(message.id, Utc::now()).await,
                Err(error) => {
                    let wait = self.backoff(message.attempts);
                    tracing::warn!(message_id = %message.id, attempt = message.attempts + 1, %error, "delivery failed; will retry");
                    let retry_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(LEASE);
                    self.store.message_failed(message.id, &error, retry_at).await
                }
            };
            if let Err(e) = recorded {
                // The lease keeps others off it; it is retried when the lease ends.
                tracing::error!(message_id = %message.id, error = %e, "could not record the delivery outcome");
                return Err(e);
            }
        }
    }

    /// Exponential back-off from `retry_base`, capped at `retry_max`.
    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.min(20));
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }

    /// The PDF of the letter a message carries, if it carries one.
    async fn letter_pdf(&self, message: &OutboxMessage) -> Result<Option<Vec<u8>>, String> {
        let Some(id) = message.letter_id else { return Ok(None) };
        let letter = self.store.letter(id).await.map_err(|e| e.to_string())?;
        let letter = letter.ok_or_else(|| "the attached letter is missing".to_string())?;
        self.blobs.get(&letter.sha256).await.map(Some).map_err(|e| e.to_string())
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), String> {
        let pdf = self.letter_pdf(message).await?;
        let email = self.build(message, pdf)?;
        match &self.transport {
            Transport::File(t) => t.send(email).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Smtp(t) => t.send(email).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }

    fn build(&self, message: &OutboxMessage, pdf: Option<Vec<u8>>) -> Result<Message, String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(message.subject.clone())
            .message_id(Some(format!("<{}@mdt-coordinator>", message.id)));
        for to in &message.to {
            builder = builder.to(to.as_str().parse::<Mailbox>().map_err(|e| e.to_string())?);
        }
        let text = SinglePart::plain(message.body.clone());
        let html = message.html.clone().map(SinglePart::html);
        if let Some(pdf) = pdf {
            let pdf_type = ContentType::parse("application/pdf").map_err(|e| e.to_string())?;
            let attachment = lettre::message::Attachment::new("letter.pdf".to_string());
            let body =
                MultiPart::mixed().singlepart(text).singlepart(attachment.body(pdf, pdf_type));
            return builder.multipart(body).map_err(|e| e.to_string());
        }
        let result = match (&message.calendar, html) {
            (None, None) => builder.singlepart(text),
            (None, Some(html)) => {
                builder.multipart(MultiPart::alternative().singlepart(text).singlepart(html))
            }
            (Some(ics), html) => {
                let calendar_type =
                    ContentType::parse("text/calendar; method=REQUEST; charset=UTF-8")
                        .map_err(|e| e.to_string())?;
                let mut alternative = MultiPart::alternative().singlepart(text);
                if let Some(html) = html {
                    alternative = alternative.singlepart(html);
                }
                let alternative = alternative.singlepart(
                    SinglePart::builder().header(calendar_type.clone()).body(ics.clone()),
                );
                builder.multipart(
                    MultiPart::mixed().multipart(alternative).singlepart(
                        lettre::message::Attachment::new("invite.ics".to_string())
                            .body(ics.clone(), calendar_type),
                    ),
                )
            }
        };
        result.map_err(|e| e.to_string())
    }
}
