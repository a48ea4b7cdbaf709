// Two stacks in one process, joined by an in-memory cable: one serves HTTP
// with node:http, the other fetches a large body through it and prints the
// transfer rate. Run with `npm start`.
import http from 'node:http';
import { bulkHttpServer } from './bulk-http-server.js';
import { createCable, createStack } from '../dist/index.js';

const MTU = Number(process.env.MTU ?? 65520);
const SIZE = Number(process.env.SIZE_MIB ?? 256) * 1024 * 1024;

const server = createStack();
const client = createStack();
const [serverLink, clientLink] = createCable({ mtu: MTU });
server.addInterface({ link: serverLink, ipv4: '10.0.0.1/24' });
client.addInterface({ link: clientLink, ipv4: '10.0.0.2/24' });

const app = bulkHttpServer(SIZE);
server.createServer((socket) => app.emit('connection', socket)).listen(80);

const started = performance.now();
http.get({ host: '10.0.0.1', port: 80, path: '/', agent: client.httpAgent() }, (res) => {
  let received = 0;
  res.on('data', (chunk) => (received += chunk.length));
  res.on('end', () => {
    const seconds = (performance.now() - started) / 1000;
    const gbits = (received * 8) / seconds / 1e9;
    console.log(`HTTP ${res.statusCode}: ${(received / 2 ** 20).toFixed(0)} MiB from stack 10.0.0.1 to stack 10.0.0.2 ` +
      `over an in-memory cable (MTU ${MTU}) in ${seconds.toFixed(2)} s: ${gbits.toFixed(2)} Gbit/s`);
    server.close();
    client.close();
  });
}).on('error', (err) => {
  console.error(err);
  process.exitCode = 1;
});
