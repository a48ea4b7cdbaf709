import { once } from 'node:events';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { B4, listen, pair, type Pair } from './support/pair.js';

let p: Pair | null = null;
afterEach(() => {
  p?.close();
  p = null;
});

describe('node:http over the stacks', () => {
  it('serves from one stack and fetches from the other, with keep-alive', async () => {
    p = pair();
    const httpServer = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        res.setHeader('content-type', 'text/plain');
        res.end(`${req.method} ${req.url} ${body.length}`);
      });
    });
    const server = p.b.createServer((socket) => httpServer.emit('connection', socket));
    await listen(server, 80);

    const agent = p.a.httpAgent({ keepAlive: true, maxSockets: 2 });
    const get = (path: string, body?: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request({ host: B4, port: 80, path, agent, method: body ? 'POST' : 'GET' }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await get('/hello')).toEqual({ status: 200, text: 'GET /hello 0' });
    const big = 'x'.repeat(3 * 1024 * 1024);
    expect(await get('/upload', big)).toEqual({ status: 200, text: `POST /upload ${big.length}` });
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/n/${i}`)));
    many.forEach((r, i) => expect(r.text).toBe(`GET /n/${i} 0`));
    agent.destroy();
    httpServer.close();
    server.close();
    void once;
  });
});
