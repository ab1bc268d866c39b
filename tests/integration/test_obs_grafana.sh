#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_obs_grafana.sh: the Grafana dashboard (docs/grafana/tierfs.json, issue #19) against
# a live /metrics: a mount with a disk tier and a fleet tier (one memcached) reads files,
# then every metric name the dashboard's queries use must be in what /metrics serves, and
# every label matcher (tier="memory", op=..., status=...) must name a label and a value
# that series really carry (instance and job come from the scrape). The dashboard must
# also be well-formed (unique panel ids, a query per panel, the datasource variable, a
# 24-column grid) and cover what an operator looks for: hit ratios per tier, S3 requests,
# bytes and latency, prefetch waste, fleet hits, errors.
. "$(dirname "$0")/fs_lib.sh"
fs_init obs_grafana
DASH=$(dirname "$0")/../../docs/grafana/tierfs.json
[ -f "$DASH" ] || fail "no dashboard at $DASH"

mkfile "$T/src/a.bin" $((3 * 1048576 + 11))
mkfile "$T/src/b.bin" 70000
seed "$T/src" "$P"
M=$T/mnt
command -v memcached >/dev/null || fail "memcached not installed (tools/setup.sh installs it)"
MCPORT=$(free_port) || fail "no free port"
memcached -u root -l 127.0.0.1 -p "$MCPORT" -U 0 -m 64 >"$T/mc.log" 2>&1 &
MCPID=$!
fs_at_exit "kill $MCPID 2>/dev/null; wait $MCPID 2>/dev/null"
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$MCPORT") 2>/dev/null && break; sleep 0.05; done
PORT=$(free_port) || fail "no free port"
fs_mount "$M" "$S3_BUCKET:/$P" "metrics=127.0.0.1:$PORT,disk_cache=$T/cache.img,disk_cache_size=64M,fleet=memcached://127.0.0.1:$MCPORT"
cmp "$T/src/a.bin" "$M/a.bin" || fail "a.bin differs"
cmp "$T/src/b.bin" "$M/b.bin" || fail "b.bin differs"
curl -s -m 5 "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt" || fail "scrape"
fs_umount "$M"

python3 - "$DASH" "$T/metrics.txt" <<'PY' || fail "the dashboard does not match the live /metrics (above)"
import json, re, sys
dash = json.load(open(sys.argv[1]))
series = {}  # metric name -> {label: set(values)}
for line in open(sys.argv[2]):
    if not line.strip() or line.startswith('#'):
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s', line)
    labels = series.setdefault(m.group(1), {})
    for k, v in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ''):
        labels.setdefault(k, set()).add(v)
bad, used, ids = [], set(), set()
assert dash.get('uid') and dash.get('title') and dash.get('schemaVersion', 0) >= 30, 'no uid, title or schemaVersion'
names = [v['name'] for v in dash['templating']['list']]
if 'datasource' not in names or 'instance' not in names:
    bad.append('templating lacks the datasource or instance variable')
for p in dash['panels']:
    if p['id'] in ids:
        bad.append('panel id %d twice' % p['id'])
    ids.add(p['id'])
    g = p['gridPos']
    if g['x'] + g['w'] > 24:
        bad.append('panel %r is wider than the grid' % p['title'])
    if p['type'] == 'row':
        continue
    if not p.get('targets'):
        bad.append('panel %r has no query' % p['title'])
    for t in p.get('targets', []):
        if t.get('datasource', {}).get('uid') != '${datasource}':
            bad.append('panel %r: a query not on the datasource variable' % p['title'])
        expr = t['expr']
        for name, sel in re.findall(r'(tierfs_[a-z0-9_]+)(\{[^}]*\})?', expr):
            used.add(name)
            if name not in series:
                bad.append('panel %r: %s is not in /metrics' % (p['title'], name))
                continue
            for k, op, v in re.findall(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"', sel or ''):
                if k in ('instance', 'job'):
                    continue  # added by the scrape
                if k not in series[name]:
                    bad.append('panel %r: %s has no label %s' % (p['title'], name, k))
                elif op == '=' and v not in series[name][k]:
                    bad.append('panel %r: %s{%s="%s"}: no such series (values: %s)' % (
                        p['title'], name, k, v, sorted(series[name][k])))
        if 'histogram_quantile' in expr and '_bucket' not in expr:
            bad.append('panel %r: histogram_quantile over a non-bucket series' % p['title'])
for need in ['tierfs_cache_hits_total', 'tierfs_cache_misses_total', 'tierfs_fleet_hits_total',
             'tierfs_s3_requests_total', 'tierfs_s3_received_bytes_total',
             'tierfs_s3_request_duration_seconds_bucket', 'tierfs_prefetch_wasted_bytes_total',
             'tierfs_s3_request_errors_total', 'tierfs_fuse_read_errors_total',
             'tierfs_fuse_read_duration_seconds_bucket']:
    if need not in used:
        bad.append('no panel shows %s' % need)
for b in bad:
    print('grafana: ' + b)
print('grafana: %d panels, %d metrics queried, all in a live /metrics of %d families' % (
    len(dash['panels']), len(used), len(series)) if not bad else 'grafana: %d problems' % len(bad))
sys.exit(1 if bad else 0)
PY
fs_log "PASS"
