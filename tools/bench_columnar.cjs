// SPDX-License-Identifier: Apache-2.0
// bench_columnar.cjs: the DuckDB side of tools/bench_peers.sh's columnar workload (issue #17).
//
//   node bench_columnar.cjs gen DIR SCALE      write the data set under DIR (SCALE 1: ~100 MB
//                                              files; 8: an eighth, for --quick)
//   node bench_columnar.cjs query DIR CASE     run one query on the files under DIR; prints
//                                              "ROWS SECONDS" (exit 1 on a wrong answer)
//   node bench_columnar.cjs cases              the case names, one per line
//
// The data set, in the shapes the issue names (row groups of 100,000 rows):
//   t4.parquet   k BIGINT, v DOUBLE, s and t VARCHAR (32 hex characters each): ~88 bytes
//                a row, 1.2M rows
//   t20.parquet  c0..c19 DOUBLE, 1.2M rows
//   hive/year=Y/month=M/part.parquet  48 files (4 years x 12 months) of 20,000 rows
// Every query checks its answer against what the generator wrote (row counts, sums of
// columns generated from the row number), so a filesystem returning wrong bytes fails.
// Needs @duckdb/node-api on NODE_PATH (bench_peers.sh installs it with npm).
'use strict';
const { DuckDBInstance } = require('@duckdb/node-api');

const ROWS4 = 1200000, ROWS20 = 1200000, ROWS_HIVE = 20000;

// Each case: the SQL over DIR, and a check of its single result row.
function cases(dir, scale) {
  const n4 = Math.floor(ROWS4 / scale), n20 = Math.floor(ROWS20 / scale), nh = Math.floor(ROWS_HIVE / scale);
  const t4 = `'${dir}/t4.parquet'`, t20 = `'${dir}/t20.parquet'`;
  return {
    // 2 of 4 columns: the two numeric ones, about a fifth of the file
    '2of4': [`SELECT count(k), sum(k % 1000) FROM ${t4} WHERE v >= 0`,
      (r) => Number(r[0]) === n4 && Number(r[1]) === sumMod(n4, 1000)],
    // 3 of 20 columns
    '3of20': [`SELECT count(*), sum(c1), sum(c7), sum(c13) FROM ${t20}`,
      (r) => Number(r[0]) === n20 && Number(r[1]) === tri(n20) + n20 && Number(r[2]) === tri(n20) + 7 * n20],
    // a filtered query: one column decides, another is read where it matches
    'filter': [`SELECT count(*), sum(k) FROM ${t4} WHERE k % 100 = 7`,
      (r) => Number(r[0]) === countMod(n4, 100, 7)],
    // the whole table
    'full': [`SELECT count(*), sum(k), max(s), max(t), sum(v) FROM ${t4}`,
      (r) => Number(r[0]) === n4 && Number(r[1]) === tri(n4)],
    // many files, Hive-partitioned: the warm case runs it again on the same mount
    'hive': [`SELECT count(*), count(DISTINCT year), count(DISTINCT month) FROM ` +
      `read_parquet('${dir}/hive/*/*/*.parquet', hive_partitioning = true) WHERE v >= 0`,
      (r) => Number(r[0]) === 48 * nh && Number(r[1]) === 4 && Number(r[2]) === 12],
  };
}
const tri = (n) => (n - 1) * n / 2;                       // 0 + 1 + ... + n-1
function sumMod(n, m) { let s = 0; for (let i = 0; i < n; i++) s += i % m; return s; }
function countMod(n, m, r) { let c = 0; for (let i = 0; i < n; i++) c += i % m === r; return c; }

async function connect() {
  const db = await DuckDBInstance.create(':memory:');
  return db.connect();
}

async function gen(dir, scale) {
  const c = await connect();
  const fs = require('fs');
  const n4 = Math.floor(ROWS4 / scale), n20 = Math.floor(ROWS20 / scale), nh = Math.floor(ROWS_HIVE / scale);
  const opts = "(FORMAT parquet, ROW_GROUP_SIZE 100000, COMPRESSION snappy)";
  fs.mkdirSync(dir, { recursive: true });
  // k is the row number (sums are checkable), v a pseudo-random double, s and t 32 hex
  // characters of md5 (incompressible, as text columns of real data mostly are)
  await c.run(`COPY (SELECT i::BIGINT AS k, hash(i) / 18446744073709551615.0 AS v, ` +
    `md5(i::VARCHAR) AS s, md5((i * 7)::VARCHAR) AS t FROM range(${n4}) r(i)) TO '${dir}/t4.parquet' ${opts}`);
  const cols = [];
  for (let j = 0; j < 20; j++) cols.push(j === 0 ? `hash(i) / 1e15 AS c0` : `(i + ${j})::DOUBLE AS c${j}`);
  await c.run(`COPY (SELECT ${cols.join(', ')} FROM range(${n20}) r(i)) TO '${dir}/t20.parquet' ${opts}`);
  for (let y = 2021; y <= 2024; y++) for (let m = 1; m <= 12; m++) {
    const d = `${dir}/hive/year=${y}/month=${m}`;
    fs.mkdirSync(d, { recursive: true });
    await c.run(`COPY (SELECT i::BIGINT AS k, hash(i + ${y * 100 + m}) / 18446744073709551615.0 AS v, ` +
      `md5(i::VARCHAR) AS s FROM range(${nh}) r(i)) TO '${d}/part.parquet' ${opts}`);
  }
}

async function query(dir, name, scale) {
  const all = cases(dir, scale);
  if (!all[name]) throw new Error(`unknown case ${name}`);
  const [sql, ok] = all[name];
  const c = await connect();
  const t0 = process.hrtime.bigint();
  const r = (await c.runAndReadAll(sql)).getRows()[0];
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (!ok(r)) {
    console.error(`bench_columnar: ${name}: wrong answer ${JSON.stringify(r, (k, v) => typeof v === 'bigint' ? v.toString() : v)}`);
    process.exit(1);
  }
  console.log(`${r[0]} ${secs.toFixed(3)}`);
}

(async () => {
  const [cmd, dir, arg] = process.argv.slice(2);
  const scale = Number(process.env.BENCH_COLUMNAR_SCALE || 1);
  if (cmd === 'gen' && dir) return gen(dir, Number(arg || 1));
  if (cmd === 'query' && dir && arg) return query(dir, arg, scale);
  if (cmd === 'cases') return console.log(Object.keys(cases('.', 1)).join('\n'));
  console.error('usage: bench_columnar.cjs gen DIR SCALE | query DIR CASE | cases');
  process.exit(2);
})().catch((e) => { console.error(`bench_columnar: ${e.message}`); process.exit(1); });
