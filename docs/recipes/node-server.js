// node-server.js — the Node.js recipe's worker: an HTTP server on the sockets the
// vassal master passes (socket activation), ready through `systemd-notify --ready`,
// and a graceful stop that drains keep-alive connections instead of waiting for them.
// Plain Node (18 or later), no npm package. docs/recipes/README.md explains each part.
'use strict';

const http = require('http');
const net = require('net');
const { execFile } = require('child_process');

const GREETING = process.env.GREETING || 'hello';
const IDLE_GRACE_MS = 100;   // a request already on its way on an idle connection
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
	if (url.pathname === '/slow')
		setTimeout(reply, Math.min(parseInt(url.searchParams.get('ms') || '1000', 10), 60000));
	else
		reply();
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

const servers = takeSockets().map((fd) => {
	const s = http.createServer(handle);
	s.keepAliveTimeout = 5000;
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

// The graceful stop: stop accepting, give idle keep-alive connections a short grace
// (a request may already be on its way), then close every connection as soon as it
// has no request in flight, and exit 0 when none is left. http.Server.close() alone
// is not enough: before Node 19 it waits for idle keep-alive clients (up to
// keepAliveTimeout, and a busy client never lets it end); from Node 19 on it closes
// them at once, under a request that may be on its way.
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
	setTimeout(() => {
		const closeIdle = () => servers.forEach((s) => s.closeIdleConnections());
		closeIdle();
		setInterval(closeIdle, IDLE_GRACE_MS).unref();
	}, IDLE_GRACE_MS).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGHUP', () => stop('SIGHUP'));
