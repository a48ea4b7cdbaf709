// The HTTP server both examples download from: every request gets `size`
// bytes (a whole number of MiB), written as fast as the connection takes
// them (write until false, then wait for 'drain').
import http from 'node:http';

const block = Buffer.alloc(1024 * 1024, 'tcpip-ts ');

export function bulkHttpServer(size) {
  return http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += block.length;
        if (!res.write(block)) return res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
}
