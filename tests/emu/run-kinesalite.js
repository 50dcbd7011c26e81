#!/usr/bin/env node
// Start kinesalite (in-memory Kinesis Data Streams emulator) bound to loopback only.
// Its own CLI has no host flag and binds all interfaces, hence this launcher.
//
// Usage: node tests/emu/run-kinesalite.js [PORT]     (or env KINESALITE_PORT; 0 = pick a free port)
// Prints exactly one line on stdout once listening:  kinesalite listening on http://127.0.0.1:<port>
// Stops on SIGTERM / SIGINT, or when stdin reaches EOF if KINESALITE_EXIT_ON_STDIN_EOF=1.
'use strict';

const kinesalite = require('kinesalite');

const arg = process.argv[2] !== undefined ? process.argv[2] : process.env.KINESALITE_PORT;
const port = arg === undefined || arg === '' ? 4567 : Number(arg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('run-kinesalite: invalid port: ' + arg);
  process.exit(2);
}

const server = kinesalite({
  createStreamMs: 50,
  deleteStreamMs: 50,
  updateStreamMs: 50,
  shardLimit: 100,
});

server.on('error', (err) => {
  console.error('run-kinesalite: ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  console.log('kinesalite listening on http://127.0.0.1:' + server.address().port);
});

// Exit at once: server.close() would wait for idle keep-alive connections.
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (process.env.KINESALITE_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
