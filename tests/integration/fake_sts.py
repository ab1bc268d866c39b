#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# fake_sts.py: a small AWS STS for the credential tests (test_fs_creds.sh), on 127.0.0.1.
#
#   fake_sts.py PORTFILE LOG --token-file F --key AK --secret SK [--ttl S]
#               [--tls-cert PEM --tls-key KEY]   (https instead of http)
#
# AssumeRoleWithWebIdentity: the WebIdentityToken must equal the token file's content
# now (tests rotate it, as Kubernetes does). AssumeRole: the request's SigV4 signature is
# verified here, independently of tierfs's signer, against the secret of the access key
# that signed it: the base key (--key/--secret) or one this server issued. A role whose
# ARN ends in "/final" gets the S3 server's real keys (--key/--secret) with a new session
# token, so a mount can use them; any other role gets keys made up here (a chain's middle
# link). Credentials live --ttl seconds. Each request is one JSON line in LOG: action,
# role, ok, why. Errors are STS's ErrorResponse documents.
import hashlib, hmac, json, os, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
portfile, logpath = args[0], args[1]
opt = {args[i]: args[i + 1] for i in range(2, len(args) - 1, 2)}
token_file, base_key, base_secret = opt['--token-file'], opt['--key'], opt['--secret']
ttl = int(opt.get('--ttl', '3600'))
secrets = {base_key: (base_secret, None)}  # access key -> (secret, session token)
lock = threading.Lock()
count = [0]


def sigv4_ok(h, body):
    auth = h.get('Authorization', '')
    if not auth.startswith('AWS4-HMAC-SHA256 '):
        return False, 'not signed'
    parts = dict(p.strip().split('=', 1) for p in auth[len('AWS4-HMAC-SHA256 '):].split(','))
    ak, date, region, service, term = parts['Credential'].split('/')
    if service != 'sts' or term != 'aws4_request':
        return False, 'scope %s' % parts['Credential']
    with lock:
        known = secrets.get(ak)
    if not known:
        return False, 'unknown access key'
    secret, tok = known
    if tok and h.get('X-Amz-Security-Token') != tok:
        return False, 'wrong or missing session token'
    signed = parts['SignedHeaders'].split(';')
    canon = ''.join('%s:%s\n' % (n, ' '.join(h.get(n, '').split())) for n in signed)
    creq = '\n'.join(['POST', '/', '', canon, parts['SignedHeaders'],
                      hashlib.sha256(body).hexdigest()])
    amz_date = h.get('X-Amz-Date', '')
    sts = '\n'.join(['AWS4-HMAC-SHA256', amz_date, '/'.join([date, region, service, term]),
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ('AWS4' + secret).encode()
    for m in (date, region, service, term):
        k = hmac.new(k, m.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, parts['Signature']):
        return False, 'SignatureDoesNotMatch'
    if 'host' not in signed or 'x-amz-date' not in signed:
        return False, 'host or x-amz-date not signed'
    return True, 'signed by ' + ak


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, text):
        b = text.encode()
        self.send_response(status)
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        f = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        action, role = f.get('Action', ''), f.get('RoleArn', '')
        ok, why = True, ''
        if f.get('Version') != '2011-06-15' or not role or not f.get('RoleSessionName'):
            ok, why = False, 'missing Version, RoleArn or RoleSessionName'
        elif action == 'AssumeRoleWithWebIdentity':
            with open(token_file) as t:
                want = t.read().strip()
            if self.headers.get('Authorization'):
                ok, why = False, 'web identity requests are not signed'
            elif f.get('WebIdentityToken') != want:
                ok, why = False, 'InvalidIdentityToken'
        elif action == 'AssumeRole':
            ok, why = sigv4_ok({k: v for k, v in self.headers.items()} | {
                k.lower(): v for k, v in self.headers.items()}, body)
        else:
            ok, why = False, 'unknown action'
        with open(logpath, 'a') as lf:
            lf.write(json.dumps({'action': action, 'role': role, 'ok': ok, 'why': why,
                                 'session': f.get('RoleSessionName', ''),
                                 'external_id': f.get('ExternalId', '')}) + '\n')
        if not ok:
            self.reply(403, '<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied'
                            '</Code><Message>%s</Message></Error></ErrorResponse>' % why)
            return
        with lock:
            count[0] += 1
            n = count[0]
            tok = 'fake-session-token-%d' % n
            if role.endswith('/final'):
                ak, sk = base_key, base_secret
            else:
                ak, sk = 'ASIAMIDDLE%06d' % n, 'middle-secret-%d' % n
                secrets[ak] = (sk, tok)
        exp = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + ttl))
        self.reply(200, '<%sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                        '<%sResult><Credentials><AccessKeyId>%s</AccessKeyId>'
                        '<SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>'
                        '<Expiration>%s</Expiration></Credentials></%sResult></%sResponse>'
                   % (action, action, ak, sk, tok, exp, action, action))


srv = ThreadingHTTPServer(('127.0.0.1', 0), H)
if '--tls-cert' in opt:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opt['--tls-cert'], opt['--tls-key'])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(portfile + '.tmp', 'w') as p:
    p.write(str(srv.server_address[1]))
os.rename(portfile + '.tmp', portfile)
srv.serve_forever()
