// Runs before `npm test`: one clear line when Redis or PostgreSQL is missing, instead of a wall of connection errors.
import net from 'node:net';

const targets = [
  ['Redis', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 6379],
  ['PostgreSQL', process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test', 5432],
];

function reachable(url, defaultPort) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || defaultPort) });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

const missing = [];
for (const [name, url, port] of targets) {
  if (!(await reachable(url, port))) missing.push(`${name} at ${new URL(url).host}`);
}
if (missing.length) {
  process.stderr.write(
    `Tests need ${missing.join(' and ')}, which did not answer: start them (see README, "Tests"), or run the suite in Docker with \`docker compose run --rm test\`.\n`,
  );
  process.exit(1);
}
