// Reference peer for the agenda fan-out benchmark (benches/fanout.rs): the same live
// protocol as mdt-coordinator's /api/sessions/{id}/live, with no persistence, no
// accounts and no tickets, built on the `ws` library.
//
//   node benches/ws-peer/server.mjs PORT
//
// Listens on 127.0.0.1:PORT (any path). Each connection gets a snapshot; a command from
// any client advances the sequence number, is broadcast to every client as one event
// (serialised once, sent to all) and is acknowledged to its sender.

import { WebSocketServer, WebSocket } from 'ws';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.mjs PORT');
  process.exit(2);
}
const host = '127.0.0.1';
const ownOrigin = `http://${host}:${port}`;
// The same liveness rule as ours: a ping every interval, closed if no pong came back.
const HEARTBEAT_MS = 10_000;

let seq = 0;
let meetingOpen = false;
let agenda = [];

const wss = new WebSocketServer({
  host,
  port,
  clientTracking: true,
  perMessageDeflate: false,
  maxPayload: 64 * 1024,
  // Only browsers on our own origin may connect, as the real server checks.
  verifyClient: ({ origin }, done) => done(origin === ownOrigin, 403, 'origin not allowed'),
});

function broadcast(message) {
  const frame = Buffer.from(JSON.stringify(message));
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) {
      client.send(frame, { binary: false });
    }
  }
}

function reply(ws, message) {
  ws.send(JSON.stringify(message));
}

/** Applies one command; returns the event to broadcast or an error to return. */
function apply(command) {
  switch (command?.kind) {
    case 'open_meeting':
      if (meetingOpen) return { error: ['invalid_state', 'the meeting is already open'] };
      meetingOpen = true;
      return { event: { kind: 'meeting_opened' } };
    case 'reorder':
      if (!Array.isArray(command.case_ids) || !command.case_ids.every((c) => typeof c === 'string')) {
        return { error: ['invalid_agenda', 'case_ids must be a list of case ids'] };
      }
      agenda = command.case_ids.slice();
      return { event: { kind: 'agenda_reordered', case_ids: agenda } };
    default:
      return { error: ['unknown_command', 'unknown command'] };
  }
}

function onMessage(ws, data, isBinary) {
  let message;
  try {
    message = isBinary ? null : JSON.parse(data.toString());
  } catch {
    message = null;
  }
  if (message?.type !== 'command' || typeof message.id !== 'string') {
    reply(ws, { type: 'error', id: message?.id ?? null, code: 'bad_message', message: 'expected a command' });
    return;
  }
  const outcome = apply(message.command);
  if (outcome.error) {
    const [code, text] = outcome.error;
    reply(ws, { type: 'error', id: message.id, code, message: text });
    return;
  }
  seq += 1;
  broadcast({ type: 'event', seq, event: { ...outcome.event, at: new Date().toISOString() } });
  reply(ws, { type: 'ack', id: message.id, seq });
}

wss.on('connection', (ws) => {
  ws.isAlive = true;
  ws.on('pong', () => {
    ws.isAlive = true;
  });
  ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
  ws.on('error', () => ws.terminate());
  reply(ws, { type: 'snapshot', seq, meeting_open: meetingOpen, agenda });
});

const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, HEARTBEAT_MS);

wss.on('listening', () => console.log(`ws-peer listening on ${ownOrigin}`));
wss.on('error', (err) => {
  console.error(`ws-peer: ${err.message}`);
  process.exit(1);
});

function stop() {
  clearInterval(heartbeat);
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
