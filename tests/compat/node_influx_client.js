// Drives the npm `influx` client (node-influx, unchanged) against the server given by
// INFLUX_URL (and INFLUX_USER / INFLUX_PASSWORD when set): writes points with its schema,
// then lists and queries them.  Prints one JSON line per step: {"step": name, "result": ...}
// or {"step": name, "error": message}.
const path = require('path');
const Influx = require(path.join(process.env.NODE_CLIENT_DIR, 'node_modules', 'influx'));

const url = new URL(process.env.INFLUX_URL);
const influx = new Influx.InfluxDB({
  host: url.hostname,
  port: Number(url.port),
  database: 'telegraf',
  username: process.env.INFLUX_USER,
  password: process.env.INFLUX_PASSWORD,
  schema: [{
    measurement: 'cpu',
    fields: {usage: Influx.FieldType.FLOAT, procs: Influx.FieldType.INTEGER},
    tags: ['host', 'region'],
  }],
});

// Three days around Chicago's autumn DST change (2024-11-03), a point every 15 minutes per
// host, web-2 without points on 2024-11-03 (local).
const start = Date.UTC(2024, 10, 2);
const points = [];
for (let i = 0; i < 3 * 96; i++) {
  for (const host of ['web-1', 'web-2']) {
    const timestamp = new Date(start + i * 900000 + (host === 'web-2' ? 7000 : 0));
    if (host === 'web-2' && timestamp >= Date.UTC(2024, 10, 3, 5) && timestamp < Date.UTC(2024, 10, 4, 6)) {
      continue;
    }
    points.push({
      measurement: 'cpu',
      tags: {host, region: host === 'web-1' ? 'eu' : 'us'},
      fields: {usage: (i * 37) % 101 / 4 + (host === 'web-2' ? 100 : 0), procs: (i * 7) % 13},
      timestamp,
    });
  }
}

const range = "time >= '2024-11-02T00:00:00Z' AND time < '2024-11-05T00:00:00Z'";
const rows = (results) => results.map((row) => ({...row, time: row.time.getTime()}));
const steps = [
  ['write', () => influx.writePoints(points, {precision: 'ms'}).then(() => points.length)],
  ['write_bad_line', () => influx.writePoints([{measurement: 'cpu', fields: {usage: NaN}}])],
  ['measurements', () => influx.getMeasurements()],
  ['series', () => influx.getSeries({measurement: 'cpu'})],
  ['daily_chicago', () => influx.query(
    'SELECT mean("usage") * 100 AS "pct", percentile("usage", 90) AS "p90", ' +
    'max("procs") - min("procs") AS "range", count("usage") FROM "cpu" WHERE ' + range +
    ' GROUP BY time(1d), "host" fill(linear) tz(\'America/Chicago\')').then(rows)],
  ['hourly_or', () => influx.query(
    'SELECT median("usage"), max("procs") FROM "cpu" WHERE ("host" = \'web-1\' OR ' +
    '"region" = \'us\') AND time >= \'2024-11-03T04:00:00Z\' AND ' +
    'time < \'2024-11-03T10:00:00Z\' GROUP BY time(1h) fill(previous)',
    {precision: 'ms'}).then(rows)],
  ['groups', () => influx.query(
    'SELECT last("usage") FROM "cpu" WHERE ' + range + ' GROUP BY "host"').then(
    (results) => results.groups().map((g) => ({name: g.name, tags: g.tags, rows: rows(g.rows)})))],
  ['raw', () => influx.query(
    'SELECT "usage", "procs", "host" FROM "cpu" WHERE "host" = \'web-2\' AND ' + range +
    ' ORDER BY time DESC LIMIT 3').then(rows)],
  ['two_statements', () => influx.query([
    'SELECT count("usage") FROM "cpu" WHERE ' + range,
    'SELECT spread("usage") FROM "cpu" WHERE ' + range + ' GROUP BY "region"',
  ]).then((results) => results.map(rows))],
];

(async () => {
  for (const [name, call] of steps) {
    try {
      console.log(JSON.stringify({step: name, result: await call()}));
    } catch (error) {
      console.log(JSON.stringify({step: name, error: String(error.message || error)}));
    }
  }
})();
