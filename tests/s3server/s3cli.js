#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// s3cli.js: a tiny S3 client (SigV4, path-style, plain http) for test setup; no npm deps.
//
//   node s3cli.js [--env FILE] [--endpoint URL] COMMAND ...
//     mb BUCKET                   create a bucket (ok if it already exists and is ours)
//     rb BUCKET                   delete an (empty) bucket
//     put BUCKET KEY [FILE|-]     upload a file (streamed) or stdin (spooled to a temp file)
//     put-random BUCKET KEY SIZE [SEED]   upload SIZE bytes of deterministic pseudo-random data
//     get BUCKET KEY [FILE|-]     download to a file or stdout
//     head BUCKET KEY             print status, size and ETag
//     rm BUCKET KEY...            delete objects
//     ls BUCKET [PREFIX]          list keys (all pages) as "SIZE KEY"
//     uploads BUCKET [PREFIX]     list incomplete multipart uploads as "KEY UPLOADID"
//     put-multipart BUCKET KEY FILE PART_BYTES PARALLEL   multipart upload of FILE, PARALLEL
//                                 parts in flight (prints "BYTES SECONDS" of the transfer)
// Credentials and endpoint come from the env file (--env, or $TIERFS_S3_ENV) and/or the
// environment: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION (default us-east-1).
// Exit status: 0 ok, 1 S3/HTTP error (the error body is printed), 2 usage.
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Readable } = require('stream');

function usage(msg) {
  if (msg) console.error(`s3cli: ${msg}`);
  console.error('usage: s3cli.js [--env FILE] [--endpoint URL] mb|rb|put|put-random|get|head|rm|ls|uploads|put-multipart ...');
  process.exit(2);
}

function readEnvFile(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].replace(/^['"]|['"]$/g, '');
  }
  return out;
}

const argv = process.argv.slice(2);
let envFile = process.env.TIERFS_S3_ENV || null;
let endpointArg = null;
while (argv.length && argv[0].startsWith('--')) {
  const o = argv.shift();
  if (o === '--env') envFile = argv.shift();
  else if (o === '--endpoint') endpointArg = argv.shift();
  else usage(`unknown option ${o}`);
}
const conf = Object.assign({}, envFile && fs.existsSync(envFile) ? readEnvFile(envFile) : {});
for (const k of ['S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'S3_REGION']) {
  if (process.env[k] && !(envFile && conf[k])) conf[k] = process.env[k];
}
if (endpointArg) conf.S3_ENDPOINT = endpointArg;
if (!conf.S3_ENDPOINT || !conf.S3_ACCESS_KEY || !conf.S3_SECRET_KEY) {
  usage('need S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY (env file or environment)');
}
const REGION = conf.S3_REGION || 'us-east-1';
const EP = new URL(conf.S3_ENDPOINT);
const agent = new http.Agent({ keepAlive: true });

// ---------------------------------------------------------------- SigV4
const sha256hex = (d) => crypto.createHash('sha256').update(d).digest('hex');
const hmac = (k, d) => crypto.createHmac('sha256', k).update(d).digest();
// RFC 3986 encoding as SigV4 wants it; '/' kept in paths.
function enc(s, keepSlash) {
  const e = encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return keepSlash ? e.replace(/%2F/g, '/') : e;
}

function sign(method, pathname, query, headers, payloadHash) {
  const now = new Date();
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  headers['host'] = EP.host;
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = payloadHash;
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const lower = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = String(v).trim();
  const canonHeaders = names.map((n) => `${n}:${lower[n]}\n`).join('');
  const signed = names.join(';');
  const canonQuery = Object.keys(query).sort().map((k) => `${enc(k)}=${enc(query[k])}`).join('&');
  const canon = [method, enc(pathname, true), canonQuery, canonHeaders, signed, payloadHash].join('\n');
  const scope = `${day}/${REGION}/s3/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canon)].join('\n');
  let k = hmac('AWS4' + conf.S3_SECRET_KEY, day);
  k = hmac(k, REGION);
  k = hmac(k, 's3');
  k = hmac(k, 'aws4_request');
  const sig = crypto.createHmac('sha256', k).update(sts).digest('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${conf.S3_ACCESS_KEY}/${scope}, SignedHeaders=${signed}, Signature=${sig}`;
  return canonQuery;
}

// @return Promise<{status, headers, body(Buffer) | undefined}>; body streamed to @sink if given.
function request(method, bucket, key, { query = {}, headers = {}, body = null, sink = null } = {}) {
  const pathname = '/' + bucket + (key !== undefined && key !== null ? '/' + key : '');
  const payloadHash = body === null || Buffer.isBuffer(body) ? sha256hex(body || '') : 'UNSIGNED-PAYLOAD';
  const h = Object.assign({}, headers);
  if (Buffer.isBuffer(body)) h['content-length'] = body.length;
  const qs = sign(method, pathname, query, h, payloadHash);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: EP.hostname, port: EP.port || 80, method, agent,
      path: enc(pathname, true) + (qs ? '?' + qs : ''), headers: h,
    }, (res) => {
      if (sink && res.statusCode < 300) {
        res.pipe(sink);
        sink.on('finish', () => resolve({ status: res.statusCode, headers: res.headers }));
        res.on('error', reject);
        return;
      }
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === null) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else { body.on('error', reject); body.pipe(req); }
  });
}

function check(r, what, okStatuses = []) {
  if (r.status < 300 || okStatuses.includes(r.status)) return r;
  console.error(`s3cli: ${what}: HTTP ${r.status}\n${r.body ? r.body.toString() : ''}`);
  process.exit(1);
}

// Deterministic pseudo-random stream: AES-128-CTR keystream keyed by the seed (GB/s).
function randomStream(size, seed) {
  const key = crypto.createHash('sha256').update(`tierfs-seed-${seed}`).digest().subarray(0, 16);
  const ctr = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) { this.push(null); return; }
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(ctr.update(n === zeros.length ? zeros : zeros.subarray(0, n)));
    },
  });
}

async function main() {
  const [cmd, bucket, ...rest] = argv;
  if (!cmd || !bucket) usage();
  switch (cmd) {
    case 'mb': {
      const r = await request('PUT', bucket, null);
      if (r.status === 409 && /BucketAlreadyOwnedByYou/.test(r.body)) break;
      check(r, `create bucket ${bucket}`);
      break;
    }
    case 'rb':
      check(await request('DELETE', bucket, null), `delete bucket ${bucket}`);
      break;
    case 'put': {
      const [key, file = '-'] = rest;
      if (!key) usage('put BUCKET KEY [FILE|-]');
      let src = file;
      let tmp = null;
      if (file === '-') { // S3 wants a Content-Length: spool stdin first
        tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 's3cli-')), 'stdin');
        await new Promise((res, rej) => process.stdin.pipe(fs.createWriteStream(tmp)).on('finish', res).on('error', rej));
        src = tmp;
      }
      const size = fs.statSync(src).size;
      const r = await request('PUT', bucket, key, {
        headers: { 'content-length': size, 'content-type': 'application/octet-stream' },
        body: fs.createReadStream(src),
      });
      if (tmp) fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
      check(r, `put ${bucket}/${key}`);
      break;
    }
    case 'put-random': {
      const [key, sizeStr, seed = '1'] = rest;
      if (!key || !sizeStr) usage('put-random BUCKET KEY SIZE [SEED]');
      const size = Number(sizeStr);
      const r = await request('PUT', bucket, key, {
        headers: { 'content-length': size, 'content-type': 'application/octet-stream' },
        body: randomStream(size, seed),
      });
      check(r, `put ${bucket}/${key}`);
      break;
    }
    case 'get': {
      const [key, file = '-'] = rest;
      if (!key) usage('get BUCKET KEY [FILE|-]');
      const sink = file === '-' ? process.stdout : fs.createWriteStream(file);
      check(await request('GET', bucket, key, { sink }), `get ${bucket}/${key}`);
      break;
    }
    case 'head': {
      const [key] = rest;
      const r = check(await request('HEAD', bucket, key), `head ${bucket}/${key}`);
      console.log(`${r.status} ${r.headers['content-length']} ${r.headers.etag}`);
      break;
    }
    case 'rm':
      for (const key of rest) check(await request('DELETE', bucket, key), `delete ${bucket}/${key}`);
      break;
    case 'ls': {
      const [prefix = ''] = rest;
      let token = null;
      do {
        const query = { 'list-type': '2', prefix };
        if (token) query['continuation-token'] = token;
        const r = check(await request('GET', bucket, null, { query }), `list ${bucket}`);
        const xml = r.body.toString();
        for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
          const k = /<Key>([\s\S]*?)<\/Key>/.exec(m[1])[1];
          const sz = /<Size>(\d+)<\/Size>/.exec(m[1])[1];
          console.log(`${sz} ${k.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'")}`);
        }
        const t = /<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml);
        token = /<IsTruncated>true<\/IsTruncated>/.test(xml) && t ? t[1] : null;
      } while (token);
      break;
    }
    case 'put-multipart': {
      const [key, file, partStr, parStr] = rest;
      if (!key || !file || !partStr || !parStr) usage('put-multipart BUCKET KEY FILE PART_BYTES PARALLEL');
      const size = fs.statSync(file).size, part = Number(partStr), par = Number(parStr);
      const t0 = process.hrtime.bigint();
      const c = check(await request('POST', bucket, key, { query: { uploads: '' }, body: Buffer.alloc(0) }), 'create upload');
      const id = /<UploadId>([\s\S]*?)<\/UploadId>/.exec(c.body.toString())[1];
      const n = Math.max(1, Math.ceil(size / part)), etags = [];
      const fd = fs.openSync(file, 'r');
      let next = 0;
      const worker = async () => {
        while (next < n) {
          const i = next++, len = Math.min(part, size - i * part), buf = Buffer.alloc(len);
          fs.readSync(fd, buf, 0, len, i * part);
          const r = check(await request('PUT', bucket, key, {
            query: { partNumber: String(i + 1), uploadId: id }, body: buf,
            headers: { 'content-length': len },
          }), `part ${i + 1}`);
          etags[i] = r.headers.etag;
        }
      };
      await Promise.all(Array.from({ length: par }, worker));
      const xml = '<CompleteMultipartUpload>' + etags.map((e, i) =>
        `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('') + '</CompleteMultipartUpload>';
      check(await request('POST', bucket, key, { query: { uploadId: id }, body: Buffer.from(xml) }), 'complete');
      console.log(`${size} ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3)}`);
      break;
    }
    case 'uploads': {
      const [prefix = ''] = rest;
      const query = { uploads: '', prefix };
      const r = check(await request('GET', bucket, null, { query }), `list uploads ${bucket}`);
      for (const m of r.body.toString().matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)) {
        const k = /<Key>([\s\S]*?)<\/Key>/.exec(m[1])[1];
        const id = /<UploadId>([\s\S]*?)<\/UploadId>/.exec(m[1])[1];
        console.log(`${k} ${id}`);
      }
      break;
    }
    default:
      usage(`unknown command ${cmd}`);
  }
  agent.destroy();
}

main().catch((e) => {
  console.error(`s3cli: ${e.message}`);
  process.exit(1);
});
