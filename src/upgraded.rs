//! Upgraded connections (the live WebSocket), served outside actix-http's HTTP/1
//! dispatcher. The app answers the upgrade request as it answers any request, with every
//! middleware and the same handler; once it has answered 101, this module writes the
//! response body straight to the socket and feeds what the client sends into the request's
//! payload. The dispatcher would hold an 8 KiB read buffer and an 8 KiB write buffer for
//! the connection's whole life, and the dispatcher itself (its request state and timers)
//! would stay too; here an idle connection is a small task of its own that holds no
//! buffer (reads go through the stack, and each chunk of the body is written as the
//! bytes it already is).
//!
//! So actix-server no longer counts an upgraded connection once it is carried here: its
//! connection limit and graceful shutdown cover HTTP requests. Live connections are closed
//! (1001, going away) before the server's graceful shutdown starts (`Hub::going_away`),
//! and their clients reconnect and resume.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::{Encoder, Framed, FramedParts};
use actix_http::body::{BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::h1;
use actix_http::{ConnectionType, Request, Response, StatusCode};
use actix_web::dev::{fn_factory, fn_service, Service, ServiceFactory, ServiceResponse};
use actix_web::web::{Bytes, BytesMut};
use futures_channel::mpsc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// What the client may still send after the server's close before the socket is dropped.
const LINGER: Duration = Duration::from_secs(1);
/// Bytes read from the socket at a time (on the stack, copied out as they arrive).
const READ_CHUNK: usize = 2048;
/// Chunks read ahead of the connection's reader before the socket is left unread.
const READ_AHEAD_CHUNKS: usize = 2;

/// The client's bytes on their way to the request's payload.
type Inbound = mpsc::Sender<Result<Bytes, PayloadError>>;

/// The upgrade service for `HttpService::upgrade`: each worker builds its own instance of
/// the app (`make_app`) to answer upgrade requests with.
pub fn factory<F, A, B>(
    make_app: F,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, h1::Codec>),
    Config = (),
    Response = (),
    Error = actix_web::Error,
    InitError = (),
>
where
    F: Fn() -> A + 'static,
    A: ServiceFactory<
            Request,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let app = make_app();
        async move {
            let app = Rc::new(app.new_service(()).await?);
            Ok(fn_service(move |(req, framed): (Request, Framed<TcpStream, h1::Codec>)| {
                let app = Rc::clone(&app);
                async move {
                    if let Err(e) = serve(app, req, framed).await {
                        tracing::debug!(error = %e, "upgraded connection ended with an error");
                    }
                    Ok::<_, actix_web::Error>(())
                }
            }))
        }
    })
}

/// Answers one upgrade request with the app; on 101, carries the connection to its end.
async fn serve<S, B>(
    app: Rc<S>, req: Request, framed: Framed<TcpStream, h1::Codec>,
) -> io::Result<()>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    // The dispatcher's write buffer goes here, and its read buffer below unless it holds
    // something: the connection lives on without them.
    let FramedParts { mut io, mut codec, read_buf, .. } = framed.into_parts();
    let (mut sender, payload) = mpsc::channel(READ_AHEAD_CHUNKS);
    // What the client sent right behind its request belongs to the upgraded stream.
    if !read_buf.is_empty() {
        let _ = sender.try_send(Ok(Bytes::copy_from_slice(&read_buf)));
    }
    drop(read_buf);
    let payload: actix_http::BoxedPayloadStream = Box::pin(payload);
    let (req, _) = req.replace_payload(payload.into());
    let response: Response<BoxBody> = match app.call(req).await {
        Ok(res) => res.map_into_boxed_body().into(),
        Err(e) => e.into(),
    };
    let (mut head, body) = response.into_parts();
    let upgraded = head.status() == StatusCode::SWITCHING_PROTOCOLS;
    if !upgraded {
        // A refusal ends the connection: it cannot go back to the HTTP dispatcher.
        head.head_mut().set_connection_type(ConnectionType::Close);
    }
    let mut out = BytesMut::new();
    codec.encode(h1::Message::Item((head, body.size())), &mut out)?;
    if !upgraded {
        let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
        codec.encode(h1::Message::Chunk(Some(bytes)), &mut out)?;
        codec.encode(h1::Message::Chunk(None), &mut out)?;
        io.write_all(&out).await?;
        return close(io).await;
    }
    io.write_all(&out).await?;
    // The connection goes on in a small task of its own, and the dispatcher (with the
    // request's state and timers) ends here.
    actix_web::rt::spawn(async move {
        if let Err(e) = carry(io, sender, body).await {
            tracing::debug!(error = %e, "upgraded connection ended with an error");
        }
    });
    Ok(())
}

/// The upgraded connection from its 101 to its end.
async fn carry(mut io: TcpStream, payload: Inbound, body: BoxBody) -> io::Result<()> {
    Pump { io: &mut io, payload: Some(payload), body, pending: None }.await?;
    io.flush().await?;
    close(io).await
}

/// Says goodbye politely: shuts the sending side, then reads until the client closes (or
/// LINGER passes), so the last frames are not lost to a reset.
async fn close(mut io: TcpStream) -> io::Result<()> {
    io.shutdown().await?;
    let drain = async {
        let mut sink = [0u8; 512];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
    Ok(())
}

/// Both directions of an upgraded connection: the body's chunks out, the client's bytes
/// into the payload. Ends with the body, which ends after the close frame.
struct Pump<'a> {
    io: &'a mut TcpStream,
    /// `None` once the client has finished sending or the reader has gone.
    payload: Option<Inbound>,
    body: BoxBody,
    /// The part of the current chunk the socket has not yet taken.
    pending: Option<Bytes>,
}

impl Future for Pump<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.write(cx)?.is_ready() {
            return Poll::Ready(Ok(()));
        }
        this.read(cx);
        Poll::Pending
    }
}

impl Pump<'_> {
    /// Writes until the socket is full or the body has nothing ready; ready when the
    /// body has ended and all of it is written.
    fn write(&mut self, cx: &mut Context<'_>) -> io::Result<Poll<()>> {
        loop {
            if let Some(chunk) = &mut self.pending {
                match Pin::new(&mut *self.io).poll_write(cx, chunk)? {
                    Poll::Ready(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Poll::Ready(n) if n == chunk.len() => self.pending = None,
                    Poll::Ready(n) => {
                        let rest = chunk.slice(n..);
                        *chunk = rest;
                        continue;
                    }
                    Poll::Pending => return Ok(Poll::Pending),
                }
            }
            match Pin::new(&mut self.body).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if !chunk.is_empty() {
                        self.pending = Some(chunk);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Err(io::Error::other(e.to_string())),
                Poll::Ready(None) => return Ok(Poll::Ready(())),
                Poll::Pending => return Ok(Poll::Pending),
            }
        }
    }

    /// Reads what the client sent into the payload while its reader wants more.
    fn read(&mut self, cx: &mut Context<'_>) {
        while let Some(sender) = &mut self.payload {
            match sender.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                // The reader wakes this task when it takes a chunk.
                Poll::Pending => return,
                // The reader has gone: what the client sends now goes nowhere.
                Poll::Ready(Err(_)) => {
                    self.payload = None;
                    return;
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            let read = match Pin::new(&mut *self.io).poll_read(cx, &mut buf) {
                Poll::Pending => return,
                Poll::Ready(Ok(())) if buf.filled().is_empty() => None,
                Poll::Ready(Ok(())) => Some(Ok(Bytes::copy_from_slice(buf.filled()))),
                Poll::Ready(Err(e)) => Some(Err(PayloadError::Io(e))),
            };
            // The payload ends when its sender goes: at the client's end, after a
            // failure the reader hears of, or when the reader has gone.
            let more = matches!(read, Some(Ok(_)));
            let delivered = read.is_some_and(|r| sender.start_send(r).is_ok());
            if !(delivered && more) {
                self.payload = None;
            }
        }
    }
}
