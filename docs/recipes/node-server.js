// node-server.js — the Node.js recipe's worker: an HTTP server on the sockets the
// vassal master passes (socket activation), ready through `systemd-notify --ready`,
// and a graceful stop that drains keep-alive connections instead of waiting for them.
// Plain Node (18 or later), no npm package. docs/recipes/README.md explains each part.
'use strict';

const http = require('http');
const net = require('net');
const { execFile } = require('child_process');

const GREETING = process.env.GREETING || 'hello';
const IDLE_GRACE_MS = 100;   // idle this long during a stop: no request is on its way
const SD_LISTEN_FDS_START = 3;

// The sockets: fds 3 .. 3+LISTEN_FDS-1, for this pid only. The variables are removed
// so that a child of ours (systemd-notify) does not take the sockets for its own.
function takeSockets() {
	const n = parseInt(process.env.LISTEN_FDS || '0', 10);
	const mine = process.env.LISTEN_PID === String(process.pid);

	delete process.env.LISTEN_FDS;
	delete process.env.LISTEN_PID;
	delete process.env.LISTEN_FDNAMES;
	if (!mine || !(n > 0)) {
		console.error('no sockets: expected LISTEN_FDS/LISTEN_PID (socket activation); run it under a vassal');
		process.exit(2);
	}
	return Array.from({ length: n }, (_, i) => SD_LISTEN_FDS_START + i);
}

let stopping = false;

function handle(req, res) {
	const url = new URL(req.url, 'http://x');
	const reply = () => {
		const body = `${GREETING} from pid ${process.pid}\n`;
		// During a stop every answer closes its connection (Node then ends it).
		if (stopping)
			res.setHeader('Connection', 'close');
		res.writeHead(200, {
			'Content-Type': 'text/plain',
			'Content-Length': Buffer.byteLength(body),
			'X-Worker-Pid': String(process.pid),
		});
		res.end(body);
	};
	if (url.pathname === '/slow') {
		console.log(`slow request started in pid ${process.pid}`);
		setTimeout(reply, Math.min(parseInt(url.searchParams.get('ms') || '1000', 10), 60000));
	} else {
		reply();
	}
}

// READY=1: Node has no AF_UNIX datagram socket, so systemd-notify sends it. The
// master accepts it because systemd-notify runs in our process group, and it reads
// the message while systemd-notify still lives (systemd-notify waits for the
// master to take it: the BARRIER=1 handshake).
function notifyReady() {
	if (!process.env.NOTIFY_SOCKET)
		return;
	execFile('systemd-notify', ['--ready', `--status=serving as pid ${process.pid}`], (err) => {
		if (err)
			console.error(`systemd-notify failed: ${err.message}`);
	});
}

// Every open connection, with its requests in flight and since when it is idle.
const conns = new Set();

function track(server) {
	server.on('connection', (sock) => {
		sock.inFlight = 0;
		sock.idleSince = Date.now();
		conns.add(sock);
		sock.on('close', () => conns.delete(sock));
	});
	server.on('request', (req, res) => {
		const sock = req.socket;
		sock.inFlight++;
		res.on('close', () => {
			sock.inFlight--;
			sock.idleSince = Date.now();
		});
	});
}

const servers = takeSockets().map((fd) => {
	const s = http.createServer(handle);
	s.keepAliveTimeout = 5000;
	track(s);
	// Node calls listen() again on the inherited socket, with a backlog of 511
	// whatever the vassal file says (the backlog option is ignored for an fd).
	s.listen({ fd });
	return s;
});
let listening = 0;
servers.forEach((s) => s.on('listening', () => {
	if (++listening === servers.length) {
		console.log(`listening on ${servers.length} socket(s) as pid ${process.pid}`);
		notifyReady();
	}
}));

// The graceful stop: stop accepting; from then on every answer says Connection:
// close (and Node closes its connection after it); a connection with no request in
// flight is closed once it has been idle for IDLE_GRACE_MS (a client's next request
// may be on its way: closing under it would fail that request); exit 0 when no
// connection is left. A keep-alive client that keeps sending is thus closed after
// its next answer, never under a request. http.Server.close() alone is not enough:
// before Node 19 it waits for idle keep-alive connections (up to keepAliveTimeout,
// forever under a busy client); from Node 19 on it closes idle ones at once, under
// a request that may be on its way.
function stop(signal) {
	if (stopping)
		return;
	stopping = true;
	console.log(`${signal}: graceful stop`);
	let open = servers.length;
	servers.forEach((s) => net.Server.prototype.close.call(s, () => {
		if (--open === 0)
			process.exit(0);
	}));
	const closeIdle = () => {
		const now = Date.now();
		for (const sock of conns)
			if (sock.inFlight === 0 && now - sock.idleSince >= IDLE_GRACE_MS)
				sock.destroy();
	};
	closeIdle();
	setInterval(closeIdle, IDLE_GRACE_MS / 4).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGHUP', () => stop('SIGHUP'));
