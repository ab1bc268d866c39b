#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// proxy.js: S3 shaping proxy for tests: latency, bandwidth cap, faults, counters.
//
// DESIGN: every request that does not start with /__proxy is forwarded unchanged
// (method, path, query, all headers including Host, so SigV4 still verifies) to the
// upstream S3 server over a keep-alive agent; the response is streamed back with
// backpressure.  Knobs are set through a small JSON control API that is served on a
// second "control" port (always up) and also under /__proxy on the main port (while
// up; bucket names cannot contain "_", so the prefix never hides a bucket).
// Only the Node standard library is used.  See tests/s3server/README.md.
//
//   node proxy.js --upstream http://127.0.0.1:7480 [--port 0] [--control-port 0]
//                 [--host 127.0.0.1] [--port-file FILE] [--tag STRING]
// --port-file receives "PORT CONTROL_PORT\n" once both listeners are up.
'use strict';

const http = require('http');
const fs = require('fs');

// ---------------------------------------------------------------- arguments
const args = { upstream: null, port: 0, 'control-port': 0, host: '127.0.0.1', 'port-file': null, tag: '' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith('--') || i + 1 >= process.argv.length || !(a.slice(2) in args)) {
    console.error(`proxy.js: bad argument '${a}'`);
    process.exit(2);
  }
  args[a.slice(2)] = process.argv[++i];
}
if (!args.upstream) {
  console.error('proxy.js: --upstream http://HOST:PORT is required');
  process.exit(2);
}
const up = new URL(args.upstream);
const UP_HOST = up.hostname;
const UP_PORT = Number(up.port || 80);

// ---------------------------------------------------------------- knobs
function defaults() {
  return {
    ttfb_ms: 0,          // extra delay before the response head goes out
    ttfb_jitter_ms: 0,   // plus uniform random 0..jitter ms
    bandwidth: 0,        // bytes/s per response body, 0 = unlimited
    upload_bandwidth: 0, // bytes/s per request body (PUT data), 0 = unlimited
    fault: null,         // {kind, rate, every_nth, count, match, stall_ms, after_bytes}
    down: false,         // true: main port closed (connection refused)
  };
}
let cfg = defaults();
// Fault bookkeeping; restarted whenever a new "fault" object is set.
let faultState = { seen: 0, fired: 0 };

const FAULT_KINDS = ['500', '503', 'reset', 'short', 'stall', '403', 'corrupt'];
const CLASSES = ['GET', 'RANGED_GET', 'HEAD', 'LIST', 'PUT', 'OTHER'];

function validateFault(f) {
  if (f === null) return null;
  if (typeof f !== 'object') throw new Error('fault must be an object or null');
  const out = Object.assign({}, f);
  out.kind = String(out.kind);
  if (!FAULT_KINDS.includes(out.kind)) throw new Error(`fault.kind must be one of ${FAULT_KINDS.join('|')}`);
  if (out.match !== undefined && out.match !== null) {
    const m = Array.isArray(out.match) ? out.match : [out.match];
    for (const c of m) if (!CLASSES.includes(String(c).toUpperCase())) throw new Error(`fault.match: bad class '${c}'`);
    out.match = m.map((c) => String(c).toUpperCase());
  }
  for (const k of ['rate', 'every_nth', 'count', 'stall_ms', 'after_bytes']) {
    if (out[k] !== undefined && out[k] !== null && (typeof out[k] !== 'number' || out[k] < 0)) {
      throw new Error(`fault.${k} must be a non-negative number`);
    }
  }
  return out;
}

async function applyConfig(obj) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('config must be a JSON object');
  if (Object.keys(obj).length === 0) {
    cfg = defaults();
    faultState = { seen: 0, fired: 0 };
    try {
      await setDown(false);
    } catch (e) {
      cfg.down = true; // could not get the port back
      throw e;
    }
    return;
  }
  const next = Object.assign({}, cfg);
  for (const [k, v] of Object.entries(obj)) {
    switch (k) {
      case 'ttfb_ms': case 'ttfb_jitter_ms': case 'bandwidth': case 'upload_bandwidth':
        if (typeof v !== 'number' || v < 0) throw new Error(`${k} must be a non-negative number`);
        next[k] = v;
        break;
      case 'fault':
        next.fault = validateFault(v);
        break;
      case 'down':
        next.down = !!v;
        break;
      default:
        throw new Error(`unknown knob '${k}'`);
    }
  }
  if ('fault' in obj) faultState = { seen: 0, fired: 0 };
  cfg = next;
  try {
    await setDown(cfg.down);
  } catch (e) {
    cfg.down = true; // could not get the port back
    throw e;
  }
}

// ---------------------------------------------------------------- counters
function zeroCounters() {
  return {
    requests: 0, get: 0, ranged_get: 0, head: 0, list: 0, put: 0, other: 0,
    bytes_sent: 0, bytes_received: 0, concurrent: 0, max_concurrent: 0, faults: 0,
    upstream_errors: 0,
  };
}
let counters = zeroCounters();
let concurrent = 0;

// Classify a request.  "get" counts every object GET (ranged or not); "ranged_get" is the
// subset carrying a Range header; a GET on a bucket root or with ?list-type is a "list".
function classify(req) {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  const segs = path.split('/').filter((s) => s.length > 0);
  switch (req.method) {
    case 'GET':
      if (segs.length <= 1 || /(^|&)list-type=/.test(query)) return 'LIST';
      return req.headers.range ? 'RANGED_GET' : 'GET';
    case 'HEAD': return 'HEAD';
    case 'PUT': return 'PUT';
    default: return 'OTHER';
  }
}

function count(cls) {
  counters.requests++;
  switch (cls) {
    case 'LIST': counters.list++; break;
    case 'RANGED_GET': counters.get++; counters.ranged_get++; break;
    case 'GET': counters.get++; break;
    case 'HEAD': counters.head++; break;
    case 'PUT': counters.put++; break;
    default: counters.other++; break;
  }
}

// @return the fault to inject for this request, or null.
function pickFault(cls) {
  const f = cfg.fault;
  if (!f) return null;
  if (f.match && !(f.match.includes(cls) || (cls === 'RANGED_GET' && f.match.includes('GET')))) return null;
  if (f.count !== undefined && f.count !== null && faultState.fired >= f.count) return null;
  faultState.seen++;
  let hit;
  if (f.every_nth) hit = faultState.seen % f.every_nth === 0;
  else if (f.rate !== undefined && f.rate !== null) hit = Math.random() < f.rate;
  else hit = true;
  if (!hit) return null;
  faultState.fired++;
  counters.faults++;
  return f;
}

// ---------------------------------------------------------------- helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function ttfbDelay() {
  return cfg.ttfb_ms + (cfg.ttfb_jitter_ms ? Math.random() * cfg.ttfb_jitter_ms : 0);
}

function s3Error(res, status, code, message, req) {
  const body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<Resource>${req.url.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</Resource>` +
    '<RequestId>tierfs-proxy</RequestId></Error>\n';
  const headers = { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) };
  if (status === 503) headers['Retry-After'] = '1';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

// Kill the client connection abruptly (RST where Node supports it).
function resetSocket(sock) {
  if (!sock || sock.destroyed) return;
  if (typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
  else sock.destroy();
}

// ---------------------------------------------------------------- forwarding
function handle(req, res) {
  if (req.url === '/__proxy' || req.url.startsWith('/__proxy/')) return control(req, res);

  const cls = classify(req);
  count(cls);
  concurrent++;
  counters.concurrent = concurrent;
  if (concurrent > counters.max_concurrent) counters.max_concurrent = concurrent;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    concurrent--;
    counters.concurrent = concurrent;
  };
  res.on('close', finish);
  res.on('finish', finish);
  res.on('error', () => {});

  const fault = pickFault(cls);
  if (fault && (fault.kind === '500' || fault.kind === '503' || fault.kind === '403')) {
    req.resume(); // discard any request body
    const send = () => {
      if (res.destroyed) return;
      if (fault.kind === '500') s3Error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.', req);
      else if (fault.kind === '403') s3Error(res, 403, 'AccessDenied', 'Access Denied', req);
      else s3Error(res, 503, 'SlowDown', 'Please reduce your request rate.', req);
    };
    const d = ttfbDelay();
    if (d > 0) setTimeout(send, d); else send();
    return;
  }

  req.on('data', (c) => { counters.bytes_received += c.length; });
  const upReq = http.request({
    host: UP_HOST, port: UP_PORT, method: req.method, path: req.url,
    headers: req.rawHeaders, // exact names, order and duplicates: the signature must verify
    agent: upstreamAgent,
    setHost: false,
  });
  let clientGone = false;
  req.on('error', () => { clientGone = true; upReq.destroy(); }); // client aborted its upload
  upReq.on('error', (err) => {
    if (clientGone) return; // we destroyed it because the client went away
    counters.upstream_errors++;
    if (!res.headersSent && !res.destroyed) {
      s3Error(res, 502, 'BadGateway', `proxy: upstream ${err.code || err.message}`, req);
    } else {
      resetSocket(res.socket);
    }
  });
  // Client went away: abandon the upstream exchange too.
  res.on('close', () => {
    if (!res.writableFinished) { clientGone = true; upReq.destroy(); }
  });
  const ubw = cfg.upload_bandwidth;
  if (fault && fault.kind === 'corrupt') {
    // One byte of the request body flipped on its way: S3 must refuse it (Content-MD5,
    // or the signed payload hash), never store it.
    let flipped = false;
    req.on('data', (c) => {
      if (!flipped && c.length) { c[0] ^= 0xff; flipped = true; }
      upReq.write(c);
    });
    req.on('end', () => upReq.end());
  } else if (!ubw) {
    req.pipe(upReq);
  } else {
    // Paced request body: each request's bytes leave at most ubw per second, as on a
    // link of that speed per connection.
    const t0 = Date.now();
    let sent = 0;
    req.on('data', (c) => {
      req.pause();
      upReq.write(c);
      sent += c.length;
      setTimeout(() => req.resume(), Math.max(0, t0 + (sent / ubw) * 1000 - Date.now()));
    });
    req.on('end', () => upReq.end());
  }

  upReq.on('response', (upRes) => {
    const d = ttfbDelay();
    const go = () => respond(req, res, upRes, fault).catch(() => resetSocket(res.socket));
    if (d > 0) setTimeout(go, d); else go();
  });
}

async function respond(req, res, upRes, fault) {
  if (res.destroyed) { upRes.destroy(); return; }
  const hasBody = req.method !== 'HEAD' && upRes.statusCode !== 204 && upRes.statusCode !== 304;
  // Keep upstream's headers (Content-Length, ETag, ...) but let Node manage the
  // client-side connection headers; keep-alive towards the client is Node's default.
  const headers = [];
  for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
    const n = upRes.rawHeaders[i].toLowerCase();
    if (n === 'connection' || n === 'keep-alive') continue;
    headers.push(upRes.rawHeaders[i], upRes.rawHeaders[i + 1]);
  }
  const emptyBody = !hasBody || upRes.headers['content-length'] === '0';
  if (fault && emptyBody && (fault.kind === 'reset' || fault.kind === 'short')) {
    upRes.destroy();
    resetSocket(res.socket); // nothing to cut short: drop the connection before the head
    return;
  }
  // A stalled answer with no body (an UploadPart's, say): the head waits, so the client
  // sees no answer at all for stall_ms (after the head, it would count as complete).
  if (fault && emptyBody && hasBody && fault.kind === 'stall') await sleep(fault.stall_ms || 0);
  if (res.destroyed) { upRes.destroy(); return; }
  res.writeHead(upRes.statusCode, upRes.statusMessage, headers);
  if (!hasBody) {
    if (fault && fault.kind === 'stall') await sleep(fault.stall_ms || 0);
    upRes.resume();
    res.end();
    return;
  }

  const bw = cfg.bandwidth;
  if (!fault && !bw) {
    // Fast path: plain pipe with backpressure; count bytes on the side.
    upRes.on('data', (c) => { counters.bytes_sent += c.length; });
    upRes.pipe(res);
    upRes.on('error', () => resetSocket(res.socket));
    return;
  }

  // Slow path: paced and/or faulted body.
  // Where the fault cuts: after_bytes, else half the body; with no Content-Length
  // (chunked listings), half of the first chunk from upstream.
  const clenHdr = upRes.headers['content-length'];
  let faultAt = Infinity;
  if (fault) {
    if (fault.after_bytes !== undefined && fault.after_bytes !== null) faultAt = fault.after_bytes;
    else if (clenHdr !== undefined) faultAt = Math.floor(Number(clenHdr) / 2);
    else faultAt = null; // decided at the first chunk
  }
  res.flushHeaders(); // the head goes out even if the fault strikes before any body byte
  const SLICE = bw ? Math.max(1024, Math.min(65536, Math.floor(bw / 50))) : 1 << 20;
  const start = Date.now();
  let sent = 0;
  let faulted = false;

  const writeOut = async (buf) => {
    if (buf.length === 0 || res.destroyed) return;
    if (bw) {
      const due = start + (sent + buf.length) * 1000 / bw;
      const wait = due - Date.now();
      if (wait > 1) await sleep(wait);
    }
    sent += buf.length;
    counters.bytes_sent += buf.length;
    // Wait until the slice reached the socket: keeps pacing honest and lets a fault
    // that follows cut the stream exactly after these bytes.
    await new Promise((resolve) => {
      const done = () => { res.off('close', done); resolve(); };
      res.on('close', done);
      res.write(buf, done);
    });
  };

  const doFault = async () => {
    faulted = true;
    if (fault.kind === 'stall') {
      await sleep(fault.stall_ms || 0);
      return false; // keep going afterwards
    }
    upRes.destroy();
    const sock = res.socket;
    if (fault.kind === 'reset') {
      // Give the client a moment to read what was sent: an RST discards unread data.
      await sleep(20);
      resetSocket(sock);
    } else { // short: close cleanly after what was written, Content-Length unmet
      if (sock && !sock.destroyed) sock.end();
    }
    return true;
  };

  try {
    if (fault && !faulted && faultAt !== null && faultAt <= 0 && await doFault()) return;
    for await (const chunk of upRes) {
      if (faultAt === null) faultAt = Math.floor(chunk.length / 2);
      let off = 0;
      while (off < chunk.length) {
        if (res.destroyed) { upRes.destroy(); return; }
        let n = Math.min(SLICE, chunk.length - off);
        if (fault && !faulted) n = Math.min(n, faultAt - sent);
        await writeOut(chunk.subarray(off, off + n));
        off += n;
        if (fault && !faulted && sent >= faultAt && await doFault()) return;
      }
    }
    if (!res.destroyed) res.end();
  } catch (e) {
    resetSocket(res.socket);
  }
}

// ---------------------------------------------------------------- control API
function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function control(req, res) {
  const url = req.url.replace(/\?.*$/, '').replace(/\/+$/, '');
  try {
    const body = await readBody(req);
    if (url === '/__proxy/config' && req.method === 'GET') return sendJson(res, 200, cfg);
    if (url === '/__proxy/config' && (req.method === 'POST' || req.method === 'PUT')) {
      let obj;
      try { obj = JSON.parse(body.trim() === '' ? '{}' : body); } catch (e) { return sendJson(res, 400, { error: `bad JSON: ${e.message}` }); }
      try { await applyConfig(obj); } catch (e) { return sendJson(res, 400, { error: e.message }); }
      return sendJson(res, 200, cfg);
    }
    if (url === '/__proxy/reset-config' && req.method === 'POST') { await applyConfig({}); return sendJson(res, 200, cfg); }
    if (url === '/__proxy/counters' && req.method === 'GET') return sendJson(res, 200, counters);
    if (url === '/__proxy/counters/reset' && req.method === 'POST') {
      counters = zeroCounters();
      counters.concurrent = concurrent;
      counters.max_concurrent = concurrent;
      return sendJson(res, 200, counters);
    }
    if ((url === '/__proxy' || url === '/__proxy/health') && req.method === 'GET') {
      return sendJson(res, 200, { ok: true, up: !cfg.down, port: mainPort, control_port: controlPort, upstream: args.upstream });
    }
    return sendJson(res, 404, { error: `no such control endpoint: ${req.method} ${url}` });
  } catch (e) {
    if (!res.headersSent) sendJson(res, 500, { error: String(e) });
  }
}

// ---------------------------------------------------------------- servers
// Idle upstream sockets are dropped after 30 s, before radosgw's own 65 s idle timeout
// could close one just as it is reused (that would surface as a spurious 502).
const upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, timeout: 30000 });

function tune(srv) {
  srv.requestTimeout = 0;       // large uploads at a low bandwidth must not time out
  srv.headersTimeout = 60000;
  srv.keepAliveTimeout = 30000;
  srv.timeout = 0;
  return srv;
}

const mainSockets = new Set();
const mainServer = tune(http.createServer(handle));
mainServer.on('connection', (s) => {
  mainSockets.add(s);
  s.on('close', () => mainSockets.delete(s));
});
mainServer.on('error', (e) => console.error(`proxy.js: main port: ${e.message}`));
mainServer.on('clientError', (err, sock) => { if (!sock.destroyed) sock.destroy(); });

const controlServer = tune(http.createServer((req, res) => {
  if (req.url === '/__proxy' || req.url.startsWith('/__proxy/')) return control(req, res);
  sendJson(res, 404, { error: 'control port: use /__proxy/...' });
}));

let mainPort = Number(args.port);
let controlPort = Number(args['control-port']);
let listening = false;

// @return a promise that settles once the main port listens (or failed to).
function listenMain() {
  return new Promise((resolve, reject) => {
    const onError = (e) => {
      mainServer.off('listening', onListening);
      reject(new Error(`cannot listen on ${args.host}:${mainPort}: ${e.message}`));
    };
    const onListening = () => {
      mainServer.off('error', onError);
      mainPort = mainServer.address().port;
      listening = true;
      resolve();
    };
    mainServer.once('error', onError);
    mainServer.once('listening', onListening);
    mainServer.listen(mainPort, args.host);
  });
}

// "down": stop accepting (connection refused) and drop open keep-alive connections.
// @return a promise that settles when the port is really closed / listening again.
async function setDown(down) {
  if (down && listening) {
    listening = false;
    mainServer.close();
    for (const s of mainSockets) s.destroy();
  } else if (!down && !listening) {
    await listenMain();
  }
}

listenMain().catch((e) => {
  console.error(`proxy.js: ${e.message}`);
  process.exit(1);
}).then(() => {
  controlServer.listen(controlPort, args.host, () => {
    controlPort = controlServer.address().port;
    const line = `${mainPort} ${controlPort}\n`;
    if (args['port-file']) {
      fs.writeFileSync(args['port-file'] + '.tmp', line);
      fs.renameSync(args['port-file'] + '.tmp', args['port-file']);
    }
    console.log(`proxy.js: listening on ${args.host}:${mainPort} (control ${controlPort}) -> ${args.upstream} ${args.tag}`);
  });
});
controlServer.on('error', (e) => {
  console.error(`proxy.js: control port: ${e.message}`);
  process.exit(1);
});

// A test proxy must not die of one odd connection: log and carry on.
process.on('uncaughtException', (e) => console.error(`proxy.js: uncaught: ${e && e.stack || e}`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
