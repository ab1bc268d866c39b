// SPDX-License-Identifier: Apache-2.0
// duckdb_copy.cjs: DuckDB COPY TO a Parquet file at PATH (test_fs_write.sh), then a query
// of the file it wrote; prints "ROWS SUM". One thread: the same bytes every run, so the
// object written through the mount can be compared with a local COPY.
//   node duckdb_copy.cjs PATH
'use strict';
const { DuckDBInstance } = require('@duckdb/node-api');

(async () => {
  const path = process.argv[2];
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run('SET threads=1');
  await c.run(`COPY (SELECT i AS k, i * 0.5 AS v, md5(i::VARCHAR) AS s FROM range(300000) t(i)) ` +
    `TO '${path}' (FORMAT parquet, ROW_GROUP_SIZE 100000)`);
  const r = await c.runAndReadAll(`SELECT count(*), sum(k) FROM '${path}'`);
  console.log(r.getRows()[0].map(String).join(' '));
})().catch((e) => {
  console.error(`duckdb_copy: ${e.message}`);
  process.exit(1);
});
