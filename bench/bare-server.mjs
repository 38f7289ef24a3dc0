// The baseline: a bare node:http server answering 200 with a small JSON body.
// Also the "trivial upstream" the gateway proxies to in the benchmark.
import http from 'node:http';

// With BENCH_HEADERS (a JSON [name, value, ...] list) it answers with exactly those
// headers and no body instead: the control for /auth/verify, whose answer is headers only.
const body = Buffer.from('{"data":{"viewer":{"id":"1","username":"bench"}}}');
const fixed = process.env.BENCH_HEADERS ? JSON.parse(process.env.BENCH_HEADERS) : null;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (fixed) {
      res.writeHead(200, fixed);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
