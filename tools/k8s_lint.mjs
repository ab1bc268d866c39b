// SPDX-License-Identifier: Apache-2.0
// k8s_lint.mjs: check the Kubernetes manifests of docs/k8s/ (docs/kubernetes.md).
//
//   node k8s_lint.mjs TIERFS_BINARY MANIFEST.yaml...      exit 0 when they pass
//   node k8s_lint.mjs --selftest TIERFS_BINARY MANIFEST.yaml
//       break the manifests in the ways the checks are for, one at a time, and exit 0
//       only when every broken copy is refused (the lint's own test)
//
// Two layers. Every object is validated against the Kubernetes OpenAPI schema of its
// kind (the kubernetes-models package from npm: required fields, types, enums). Then the
// pieces must fit together the way tierfs needs them to:
//   - the tierfs container runs `tierfs SOURCE MOUNTPOINT -f -o OPTIONS`, and every
//     option is one `tierfs --help` lists (the binary built from this tree);
//   - it is privileged, has /dev/fuse, its mount point is under a volume mounted with
//     mountPropagation Bidirectional (a hostPath), its disk_cache under a hostPath;
//   - memory limit >= mem_cache_size + 32 MiB (the small-memory bound), request = limit;
//   - metrics=HOST:PORT is a container port, and the liveness probe GETs /metrics there;
//   - fleet=memcached://... names exactly the pods of a memcached StatefulSet through its
//     headless Service, on the port the container listens on;
//   - credentials: IRSA (the service account's role-arn annotation = AWS_ROLE_ARN, the
//     token file inside a projected serviceAccountToken volume for sts.amazonaws.com), no
//     static keys anywhere;
//   - a pod reading the mount gets it with mountPropagation HostToContainer.
// Prints one line per problem; needs kubernetes-models and yaml on NODE_PATH or in
// node_modules next to it (tests/unit/fixtures/k8s/fetch.cmake installs them).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const modDir = process.env.K8S_LINT_MODULES;
const resolveMod = (name) => (modDir ? path.join(modDir, name) : name);
const YAML = require(resolveMod('yaml'));

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return resolveMod(`kubernetes-models/${group ? group + '/' : ''}${version}/${kind}`);
}

async function schemaProblems(docs) {
  const out = [];
  for (const d of docs) {
    let mod;
    try {
      const p = modelPath(d.apiVersion || '', d.kind || '');
      mod = await import(modDir ? path.join(p, '..', `${d.kind}.js`) : p);
    } catch (e) {
      out.push(`${d.kind} ${d.metadata?.name}: unknown apiVersion/kind ${d.apiVersion}/${d.kind}`);
      continue;
    }
    try {
      new mod[d.kind](d).validate();
    } catch (e) {
      out.push(`${d.kind} ${d.metadata?.name}: ${e.message}`);
    }
  }
  return out;
}

const bytes = (q) => {
  const m = /^(\d+)([KMGT]i?|[kMGT])?$/.exec(String(q));
  if (!m) return NaN;
  const mult = { K: 1024, Ki: 1024, k: 1000, M: 2 ** 20, Mi: 2 ** 20, G: 2 ** 30, Gi: 2 ** 30, T: 2 ** 40, Ti: 2 ** 40 };
  return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
};
const under = (p, dir) => p === dir || p.startsWith(dir.replace(/\/$/, '') + '/');

function fitProblems(docs, helpText) {
  const out = [];
  const find = (kind) => docs.filter((d) => d.kind === kind);
  const known = new Set([...helpText.matchAll(/-o ([a-z_]+)/g)].map((m) => m[1]));
  ['allow_other', 'allow_root', 'auto_unmount'].forEach((o) => known.add(o)); // libfuse's
  const pods = [...find('DaemonSet'), ...find('Deployment'), ...find('StatefulSet'), ...find('Pod')];
  const specOf = (d) => (d.kind === 'Pod' ? d.spec : d.spec?.template?.spec) || {};
  let mounts = 0;
  const tierfsMountDirs = [];
  for (const d of pods) {
    const spec = specOf(d);
    for (const c of spec.containers || []) {
      for (const e of c.env || [])
        if (/^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)$/.test(e.name))
          out.push(`${d.metadata.name}/${c.name}: static credentials in env ${e.name}`);
      if ((c.command || [])[0] !== 'tierfs') continue;
      mounts++;
      const where = `${d.kind} ${d.metadata.name}/${c.name}`;
      const cmd = c.command;
      const oi = cmd.indexOf('-o');
      if (oi < 0 || !cmd.includes('-f')) out.push(`${where}: tierfs needs -f (foreground) and -o options`);
      const positional = cmd.slice(1).filter((a, i, all) => !a.startsWith('-') && all[i - 1] !== '-o');
      const mnt = positional[1];
      const opts = {};
      for (const kv of (cmd[oi + 1] || '').split(',')) {
        const [k, ...v] = kv.split('=');
        opts[k] = v.join('=');
        if (!known.has(k)) out.push(`${where}: -o ${k} is not a tierfs option (tierfs --help)`);
        if (k === 'access_key' || k === 'secret_key') out.push(`${where}: static credentials in -o ${k}`);
      }
      const vm = (p) => (c.volumeMounts || []).find((m) => under(p, m.mountPath));
      const vol = (m) => (spec.volumes || []).find((v) => v.name === m?.name);
      if (!c.securityContext?.privileged) out.push(`${where}: not privileged (FUSE mounts need it)`);
      if (!(c.volumeMounts || []).some((m) => m.mountPath === '/dev/fuse' && vol(m)?.hostPath?.path === '/dev/fuse'))
        out.push(`${where}: /dev/fuse is not mounted from the host`);
      const mm = mnt && vm(mnt);
      if (!mnt || !mm || mm.mountPropagation !== 'Bidirectional' || !vol(mm)?.hostPath)
        out.push(`${where}: the mount point ${mnt} is not under a hostPath volume with mountPropagation Bidirectional`);
      else tierfsMountDirs.push(vol(mm).hostPath.path.replace(/\/$/, '') + mnt.slice(mm.mountPath.replace(/\/$/, '').length));
      if (opts.disk_cache && !vol(vm(opts.disk_cache))?.hostPath)
        out.push(`${where}: disk_cache ${opts.disk_cache} is not on a hostPath volume (it would not survive a restart)`);
      const limit = bytes(c.resources?.limits?.memory), req = bytes(c.resources?.requests?.memory);
      const mem = bytes(opts.mem_cache_size || 'NaN');
      if (!(limit >= mem + 32 * 2 ** 20)) out.push(`${where}: memory limit ${c.resources?.limits?.memory} under mem_cache_size ${opts.mem_cache_size} + 32Mi`);
      if (req !== limit) out.push(`${where}: memory request ${c.resources?.requests?.memory} is not the limit`);
      const mport = Number((opts.metrics || '').split(':').pop());
      if (!opts.metrics || !(c.ports || []).some((p) => p.containerPort === mport))
        out.push(`${where}: metrics=${opts.metrics} is not a container port`);
      const lp = c.livenessProbe?.httpGet;
      if (!lp || lp.path !== '/metrics' || lp.port !== mport) out.push(`${where}: the liveness probe does not GET /metrics on the metrics port`);
      // fleet: exactly the StatefulSet's pods through its headless service
      if (opts.fleet) {
        const servers = opts.fleet.replace(/^memcached:\/\//, '').split('+');
        const names = new Set();
        for (const ss of find('StatefulSet')) {
          const svc = find('Service').find((s) => s.metadata.name === ss.spec.serviceName);
          const port = ss.spec.template.spec.containers[0].ports?.[0]?.containerPort;
          if (!svc || svc.spec.clusterIP !== 'None') continue;
          for (let i = 0; i < ss.spec.replicas; i++)
            names.add(`${ss.metadata.name}-${i}.${svc.metadata.name}.${ss.metadata.namespace}.svc.cluster.local:${port}`);
        }
        const got = new Set(servers);
        if (names.size === 0 || servers.length !== names.size || [...names].some((n) => !got.has(n)))
          out.push(`${where}: fleet= ${servers.join(' ')} is not every pod of a memcached StatefulSet behind a headless Service (${[...names].join(' ')})`);
      }
      // credentials: IRSA
      const env = Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
      const sa = find('ServiceAccount').find((s) => s.metadata.name === spec.serviceAccountName);
      const arn = sa?.metadata?.annotations?.['eks.amazonaws.com/role-arn'];
      if (!arn || env.AWS_ROLE_ARN !== arn) out.push(`${where}: AWS_ROLE_ARN is not the service account's eks.amazonaws.com/role-arn`);
      const tm = env.AWS_WEB_IDENTITY_TOKEN_FILE && vm(env.AWS_WEB_IDENTITY_TOKEN_FILE);
      const src = vol(tm)?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
      if (!src || src.audience !== 'sts.amazonaws.com' || !env.AWS_WEB_IDENTITY_TOKEN_FILE.endsWith('/' + src.path))
        out.push(`${where}: AWS_WEB_IDENTITY_TOKEN_FILE is not a projected service account token for sts.amazonaws.com`);
    }
  }
  if (mounts === 0) out.push('no container runs tierfs');
  // readers: a hostPath at or under a tierfs mount, with HostToContainer
  for (const d of pods) {
    const spec = specOf(d);
    for (const c of spec.containers || []) {
      if ((c.command || [])[0] === 'tierfs') continue;
      for (const m of c.volumeMounts || []) {
        const v = (spec.volumes || []).find((x) => x.name === m.name);
        const hp = v?.hostPath?.path;
        if (hp && tierfsMountDirs.some((dir) => under(hp, dir)) && m.mountPropagation !== 'HostToContainer')
          out.push(`${d.metadata.name}/${c.name}: reads the tierfs mount ${hp} without mountPropagation HostToContainer`);
      }
    }
  }
  return out;
}

async function lint(docs, helpText) {
  return [...(await schemaProblems(docs)), ...fitProblems(docs, helpText)];
}

const loadDocs = (files) =>
  files.flatMap((f) => YAML.parseAllDocuments(readFileSync(f, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${f}: ${d.errors[0].message}`);
    return d.toJS();
  })).filter(Boolean);

// The ways to break them, each one a check above must catch.
const breakers = {
  'no Bidirectional': (ds) => ds.tierfs.volumeMounts.find((m) => m.mountPropagation).mountPropagation = 'None',
  'not privileged': (ds) => delete ds.tierfs.securityContext,
  'a misspelt option': (ds) => ds.tierfs.command[5] = ds.tierfs.command[5].replace('mem_cache_size', 'mem_cache_sise'),
  'memory limit too small': (ds) => ds.tierfs.resources.limits.memory = '140Mi',
  'liveness elsewhere': (ds) => ds.tierfs.livenessProbe.httpGet.port = 8080,
  'fleet misses a server': (ds) => ds.tierfs.command[5] = ds.tierfs.command[5].replace(/\+[^+,]*-2\.[^,]*/, ''),
  'static keys': (ds) => ds.tierfs.env.push({ name: 'AWS_SECRET_ACCESS_KEY', value: 'x' }),
  'wrong role': (ds) => ds.tierfs.env.find((e) => e.name === 'AWS_ROLE_ARN').value = 'arn:aws:iam::1:role/other',
  'reader without propagation': (ds) => delete ds.reader.volumeMounts[0].mountPropagation,
  'schema: port as text': (ds) => ds.tierfs.ports[0].containerPort = 'metrics',
  'schema: no selector': (ds) => delete ds.daemonset.spec.selector,
};

async function main() {
  const argv = process.argv.slice(2);
  const self = argv[0] === '--selftest';
  if (self) argv.shift();
  const [bin, ...files] = argv;
  if (!bin || files.length === 0) {
    console.error('usage: k8s_lint.mjs [--selftest] TIERFS_BINARY MANIFEST.yaml...');
    process.exit(2);
  }
  const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
  const docs = loadDocs(files);
  const problems = await lint(docs, help);
  problems.forEach((p) => console.log(`k8s_lint: ${p}`));
  if (!self) {
    console.log(`k8s_lint: ${docs.length} objects, ${problems.length} problems`);
    process.exit(problems.length ? 1 : 0);
  }
  if (problems.length) process.exit(1);
  let missed = 0;
  for (const [name, brk] of Object.entries(breakers)) {
    const copy = structuredClone(docs);
    const daemonset = copy.find((d) => d.kind === 'DaemonSet');
    const pod = copy.find((d) => d.kind === 'Pod');
    brk({ daemonset, tierfs: daemonset.spec.template.spec.containers[0], reader: pod.spec.containers[0] });
    const got = await lint(copy, help);
    console.log(`k8s_lint selftest: ${name}: ${got.length ? 'refused: ' + got[0] : 'MISSED'}`);
    missed += got.length === 0;
  }
  process.exit(missed ? 1 : 0);
}

main().catch((e) => {
  console.error(`k8s_lint: ${e.message}`);
  process.exit(1);
});
