// Drives the original TempoDB Node.js client (npm tempodb@0.3.2) against a server given by
// TEMPODB_PORT, TEMPODB_KEY and TEMPODB_SECRET, and prints one JSON line per call:
// {"step": name, "response": status, "body": parsed body or text}.
// That client always speaks HTTPS (its `secure` option cannot turn it off).
const path = require('path');
const tempodb = require(path.join(process.env.NODE_CLIENT_DIR, 'node_modules', 'tempodb'));

const client = new tempodb.TempoDBClient(process.env.TEMPODB_KEY, process.env.TEMPODB_SECRET, {
  hostname: 'localhost',
  port: Number(process.env.TEMPODB_PORT),
});

const start = new Date(Date.UTC(2012, 0, 1));
const end = new Date(Date.UTC(2012, 0, 2));
const points = [];
for (let i = 0; i < 1440; i++) {
  points.push({t: new Date(start.getTime() + i * 60000).toISOString(), v: i % 60});
}

const steps = [
  ['create', (cb) => client.create_series('boiler.3.temp', cb)],
  ['create_duplicate', (cb) => client.create_series('boiler.3.temp', cb)],
  ['create_without_key', (cb) => client.create_series(null, cb)],
  ['write_key', (cb) => client.write_key('boiler.3.temp', points, cb)],
  ['read_key_raw', (cb) => client.read_key('boiler.3.temp', start, end, {interval: 'raw'}, cb)],
  ['read_key_hourly_max_chicago',
   (cb) => client.read_key('boiler.3.temp', start, end,
                           {interval: '1hour', 'function': 'max', tz: 'America/Chicago'}, cb)],
  ['increment_key', (cb) => client.increment_key('counter', [{t: '2012-01-01T00:00:00Z', v: 2},
                                                             {t: '2012-01-01T00:00:00Z', v: 3}], cb)],
  ['write_bulk', (cb) => client.write_bulk(start, [{key: 'bulk-a', v: 1.5}, {key: 'bulk-b', v: 7}], cb)],
  ['increment_bulk', (cb) => client.increment_bulk(start, [{key: 'bulk-b', v: 1}], cb)],
  ['read_multi', (cb) => client.read(start, end, {key: ['bulk-a', 'bulk-b'], interval: 'raw'}, cb)],
  ['get_series_by_key', (cb) => client.get_series({key: 'boiler.3.temp'}, cb)],
  ['update_series', (cb) => client.get_series({key: 'boiler.3.temp'}, (r) => {
    const s = r.body[0];
    client.update_series(s.id, s.key, 'Boiler 3', {room: 'basement'}, ['heating'], cb);
  })],
  ['get_series_by_tag_and_attr', (cb) => client.get_series({tag: 'heating', attr: {room: 'basement'}}, cb)],
  ['delete_key', (cb) => client.delete_key('boiler.3.temp', start, new Date(Date.UTC(2012, 0, 1, 12)), cb)],
  ['read_after_delete', (cb) => client.read_key('boiler.3.temp', start, end, {interval: 'raw'}, cb)],
  ['read_missing', (cb) => client.read_key('no-such-key', start, end, {}, cb)],
];

function run(i) {
  if (i >= steps.length) return;
  const [name, call] = steps[i];
  call((result) => {
    console.log(JSON.stringify({step: name, response: result.response, body: result.body}));
    run(i + 1);
  });
}
run(0);
