// The per-connection command behind qemu's user-network guestfwd: its stdin/stdout (one socket to the
// guest) spliced to a TCP service on this machine's loopback. Usage: node tcp-pipe.mjs HOST PORT
import net from 'node:net';

const upstream = net.connect(Number(process.argv[3]), process.argv[2]);
process.stdin.pipe(upstream).pipe(process.stdout);
upstream.on('error', () => process.exit(1));
upstream.on('close', () => process.exit(0));
process.stdin.on('end', () => upstream.end());
