// app.js — the benchmarks' app for PM2 (issue 19): bench/app.py's twin in Node, since
// PM2's cluster mode (the mode with `pm2 reload`) runs Node programs only. 200 with
// the serving pid in X-Worker-Pid; PORT from the environment; BENCH_APP_START_MS=N
// costs N ms of CPU before it listens (a busy loop, as bench/app.py does).
// SIGINT (PM2's stop signal): stop accepting, answer a request arriving on a kept-alive
// connection with `Connection: close`, close one idle for 100 ms, exit when none is
// left (the graceful stop of hello-worker and bench/pyworker.py).
'use strict';
const http = require('http');

const startMs = parseInt(process.env.BENCH_APP_START_MS || '0', 10);
const t0 = process.cpuUsage();
const cpuMs = () => { const u = process.cpuUsage(t0); return (u.user + u.system) / 1000; };
let x = 0;
while (cpuMs() < startMs)
	for (let i = 0; i < 1000; i++) x += i * i;

let stopping = false;
const conns = new Set();
const server = http.createServer((req, res) => {
	const body = `hello from pid ${process.pid}\n`;
	if (stopping)
		res.setHeader('Connection', 'close');
	res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body),
		'X-Worker-Pid': String(process.pid) });
	res.end(body);
});
server.keepAliveTimeout = 5000;
server.on('connection', (s) => {
	s.busy = 0; s.idleSince = Date.now(); conns.add(s);
	s.on('close', () => conns.delete(s));
});
server.on('request', (req, res) => {
	req.socket.busy++;
	res.on('close', () => { req.socket.busy--; req.socket.idleSince = Date.now(); });
});
server.listen(parseInt(process.env.PORT, 10), '127.0.0.1', () => {
	if (process.send)
		process.send('ready');        // PM2's wait_ready
});

function stop() {
	if (stopping)
		return;
	stopping = true;
	server.close(() => process.exit(0));
	setInterval(() => {
		for (const s of conns)
			if (s.busy === 0 && Date.now() - s.idleSince >= 100)
				s.destroy();
	}, 25).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
