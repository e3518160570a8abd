//! The fan-out benchmark's floor: the least work any server can do to deliver one event to
//! every viewer on this machine, measured beside ours and the peer in the same run.
//!
//! It speaks the peer's protocol (`benches/ws-peer/server.mjs`: snapshot, command, event,
//! ack) and stores nothing; each request path is a room of its own. Each event is framed once; the viewers are split into one
//! shard per CPU, and each shard's task writes the frame straight into each of its
//! sockets (one `write` per viewer, no hand-off per viewer). A socket that cannot take the
//! whole frame queues the rest for its own writer task, so order holds. Ours must also
//! store the event first and audit; this does not, so it bounds what any server reaches.
//!
//! The benchmark starts it by running its own executable with `FANOUT_FLOOR_PORT` set.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Set to a port, the benchmark's executable serves the floor on it instead.
pub const PORT_VAR: &str = "FANOUT_FLOOR_PORT";
/// The longest handshake request read.
const MAX_REQUEST_BYTES: usize = 8192;
/// The longest client frame accepted (as the peer's `maxPayload`).
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Serves until killed.
pub fn serve(port: u16) -> Result<()> {
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shards)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.context("bind")?;
        let origin = format!("http://127.0.0.1:{port}");
        let rooms: Rooms = Arc::new(Mutex::new(HashMap::new()));
        println!("floor listening on {origin}");
        loop {
            let (stream, _) = listener.accept().await.context("accept")?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(stream, Arc::clone(&rooms), origin.clone(), shards));
        }
    })
}

/// Every room, by request path.
type Rooms = Arc<Mutex<HashMap<String, Arc<Hub>>>>;

/// One room: its state, and the shards its frames are written by.
struct Hub {
    state: Mutex<Room>,
    shards: Vec<mpsc::UnboundedSender<ShardMsg>>,
}

struct Room {
    seq: u64,
    meeting_open: bool,
    agenda: Value,
    next_id: u64,
}

enum ShardMsg {
    Join(Arc<Conn>),
    Leave(u64),
    Frame(Bytes),
}

impl Hub {
    fn new(shards: usize) -> Self {
        let shards = (0..shards)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(shard(rx));
                tx
            })
            .collect();
        let room = Room { seq: 0, meeting_open: false, agenda: json!([]), next_id: 0 };
        Self { state: Mutex::new(room), shards }
    }

    fn room(&self) -> std::sync::MutexGuard<'_, Room> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shard_of(&self, id: u64) -> &mpsc::UnboundedSender<ShardMsg> {
        &self.shards[id as usize % self.shards.len()]
    }
}

/// A shard's task: writes each frame to each of its connections, in order.
async fn shard(mut inbox: mpsc::UnboundedReceiver<ShardMsg>) {
    let mut members: Vec<Arc<Conn>> = Vec::new();
    while let Some(message) = inbox.recv().await {
        match message {
            ShardMsg::Join(conn) => members.push(conn),
            ShardMsg::Leave(id) => members.retain(|c| c.id != id),
            ShardMsg::Frame(frame) => {
                for conn in &members {
                    conn.send(frame.clone());
                }
            }
        }
    }
}

/// One client's socket and what it could not yet take.
struct Conn {
    id: u64,
    stream: TcpStream,
    backlog: Mutex<VecDeque<Bytes>>,
    wake: Notify,
    /// The client has gone: the writer task ends.
    closed: AtomicBool,
}

impl Conn {
    /// Writes `frame` now if nothing waits before it, else queues it for the writer task.
    fn send(&self, frame: Bytes) {
        let mut backlog = self.backlog.lock().unwrap_or_else(PoisonError::into_inner);
        if !backlog.is_empty() {
            backlog.push_back(frame);
            return;
        }
        match self.stream.try_write(&frame) {
            Ok(n) if n == frame.len() => return,
            Ok(n) => backlog.push_back(frame.slice(n..)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => backlog.push_back(frame),
            Err(_) => return,
        }
        self.wake.notify_one();
    }

    /// Drains the backlog whenever `send` leaves one.
    async fn write_backlog(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            loop {
                if self.stream.writable().await.is_err() {
                    return;
                }
                let mut backlog = self.backlog.lock().unwrap_or_else(PoisonError::into_inner);
                while let Some(front) = backlog.front_mut() {
                    match self.stream.try_write(front) {
                        Ok(n) if n == front.len() => {
                            backlog.pop_front();
                        }
                        Ok(n) => {
                            let rest = front.slice(n..);
                            *front = rest;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => return,
                    }
                }
                if backlog.is_empty() {
                    break;
                }
            }
        }
    }
}

/// One connection: the handshake, the snapshot, then its commands until it closes.
async fn connection(stream: TcpStream, rooms: Rooms, origin: String, shards: usize) {
    let Ok(Some((path, key))) = handshake(&stream, &origin).await else {
        return;
    };
    let hub = {
        let mut rooms = rooms.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(rooms.entry(path).or_insert_with(|| Arc::new(Hub::new(shards))))
    };
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if write_all(&stream, answer.as_bytes()).await.is_err() {
        return;
    }
    let conn = {
        let mut room = hub.room();
        room.next_id += 1;
        let conn = Arc::new(Conn {
            id: room.next_id,
            stream,
            backlog: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        // Joined under the room's lock: no event falls between the snapshot and the join.
        let snapshot = json!({
            "type": "snapshot", "seq": room.seq, "meeting_open": room.meeting_open,
            "agenda": room.agenda,
        });
        conn.send(text_frame(&snapshot));
        let _ = hub.shard_of(conn.id).send(ShardMsg::Join(Arc::clone(&conn)));
        conn
    };
    tokio::spawn(Arc::clone(&conn).write_backlog());
    let _ = read_commands(&conn, &hub).await;
    let _ = hub.shard_of(conn.id).send(ShardMsg::Leave(conn.id));
    conn.closed.store(true, Ordering::Release);
    conn.wake.notify_one();
}

/// Reads the upgrade request; answers 426 or 403 itself. The path (without its query)
/// and the client's key when it may join.
async fn handshake(stream: &TcpStream, origin: &str) -> io::Result<Option<(String, String)>> {
    let mut request = Vec::with_capacity(1024);
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        if request.len() >= MAX_REQUEST_BYTES || read_some(stream, &mut request).await? == 0 {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&request);
    let header = |name: &str| {
        text.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let refuse = |status: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let Some(key) = header("sec-websocket-key") else {
        write_all(stream, refuse("426 Upgrade Required").as_bytes()).await?;
        return Ok(None);
    };
    if header("origin").as_deref() != Some(origin) {
        write_all(stream, refuse("403 Forbidden").as_bytes()).await?;
        return Ok(None);
    }
    let target = text.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    Ok(Some((path, key)))
}

/// Client frames (masked, unfragmented) until the connection ends.
async fn read_commands(conn: &Conn, hub: &Hub) -> Result<()> {
    let mut buffer = Vec::with_capacity(512);
    loop {
        while let Some((opcode, payload, used)) = client_frame(&buffer)? {
            buffer.drain(..used);
            match opcode {
                0x1 => command(conn, hub, &payload),
                0x8 => return Ok(()),
                0x9 => conn.send(control_frame(0xA, &payload)),
                _ => {}
            }
        }
        if read_some(&conn.stream, &mut buffer).await? == 0 {
            return Ok(());
        }
    }
}

/// Applies one command as the peer does: an event to every client, then the ack.
fn command(conn: &Conn, hub: &Hub, payload: &[u8]) {
    let message: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let reply = {
        let mut room = hub.room();
        let command = &message["command"];
        let event = match command["kind"].as_str() {
            Some("open_meeting") if !room.meeting_open => {
                room.meeting_open = true;
                Ok(json!({ "kind": "meeting_opened" }))
            }
            Some("open_meeting") => Err(("invalid_state", "the meeting is already open")),
            Some("reorder") if command["case_ids"].is_array() => {
                room.agenda = command["case_ids"].clone();
                Ok(json!({ "kind": "agenda_reordered", "case_ids": room.agenda }))
            }
            Some("reorder") => Err(("invalid_agenda", "case_ids must be a list of case ids")),
            _ => Err(("unknown_command", "unknown command")),
        };
        match event {
            Ok(mut event) => {
                room.seq += 1;
                event["at"] = json!(chrono::Utc::now().to_rfc3339());
                let frame =
                    text_frame(&json!({ "type": "event", "seq": room.seq, "event": event }));
                for shard in &hub.shards {
                    let _ = shard.send(ShardMsg::Frame(frame.clone()));
                }
                json!({ "type": "ack", "id": id, "seq": room.seq })
            }
            Err((code, text)) => {
                json!({ "type": "error", "id": id, "code": code, "message": text })
            }
        }
    };
    conn.send(text_frame(&reply));
}

/// One complete frame at the start of `buffer`: opcode, unmasked payload, bytes used.
fn client_frame(buffer: &[u8]) -> Result<Option<(u8, Vec<u8>, usize)>> {
    let [b0, b1, ..] = *buffer else { return Ok(None) };
    if b0 & 0x80 == 0 || b1 & 0x80 == 0 {
        bail!("fragmented or unmasked client frame");
    }
    let (len, mut at) = match b1 & 0x7F {
        126 if buffer.len() >= 4 => (u16::from_be_bytes([buffer[2], buffer[3]]) as usize, 4),
        127 if buffer.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&buffer[2..10]);
            (usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX), 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if len > MAX_FRAME_BYTES {
        bail!("client frame of {len} bytes");
    }
    if buffer.len() < at + 4 + len {
        return Ok(None);
    }
    let mask = [buffer[at], buffer[at + 1], buffer[at + 2], buffer[at + 3]];
    at += 4;
    let payload = buffer[at..at + len].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
    Ok(Some((b0 & 0x0F, payload, at + len)))
}

fn text_frame(message: &Value) -> Bytes {
    control_frame(0x1, message.to_string().as_bytes())
}

/// An unmasked, final server frame.
fn control_frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + 10);
    frame.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.put_u8(n as u8),
        n if n <= 0xFFFF => {
            frame.put_u8(126);
            frame.put_u16(n as u16);
        }
        n => {
            frame.put_u8(127);
            frame.put_u64(n as u64);
        }
    }
    frame.put_slice(payload);
    frame.freeze()
}

async fn read_some(stream: &TcpStream, into: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        let mut chunk = [0u8; 4096];
        match stream.try_read(&mut chunk) {
            Ok(n) => {
                into.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
