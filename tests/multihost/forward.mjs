// tests/multihost/forward.mjs — a TCP forwarder, for tests/multihost/run.sh: the LLM stub
// (tests/fixtures/llm-stub.mjs) listens on 127.0.0.1 only, so in the "db" host's network
// namespace this passes its host address on to it, and both app hosts reach one stub.
//
//   node tests/multihost/forward.mjs LISTEN_ADDR LISTEN_PORT TARGET_PORT   prints "forwarding"
import net from 'node:net';

const [addr, port, target] = process.argv.slice(2);
if (!addr || !Number(port) || !Number(target)) {
  process.stderr.write('usage: node forward.mjs LISTEN_ADDR LISTEN_PORT TARGET_PORT\n');
  process.exit(2);
}
net.createServer((client) => {
  const upstream = net.connect(Number(target), '127.0.0.1');
  const end = () => { client.destroy(); upstream.destroy(); };
  client.pipe(upstream);
  upstream.pipe(client);
  for (const s of [client, upstream]) { s.on('error', end); s.on('close', end); }
}).listen(Number(port), addr, () => process.stdout.write(`forwarding ${addr}:${port} to 127.0.0.1:${target}\n`));
