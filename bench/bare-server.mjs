// The baseline: a bare node:http "hello world" answering 200 at once with a small
// JSON body (any request body is drained, not waited for). Also the "trivial
// upstream" the gateway proxies to.
//
// With BENCH_HEADERS (a JSON [name, value, ...] list) it answers with exactly those
// headers and no body instead: the control for /auth/verify, whose answer is headers only.
import http from 'node:http';

const body = Buffer.from('{"data":{"viewer":{"id":"1","username":"bench"}}}');
const plain = { 'Content-Type': 'application/json', 'Content-Length': String(body.length) };
const fixed = process.env.BENCH_HEADERS ? JSON.parse(process.env.BENCH_HEADERS) : null;
const server = http.createServer((req, res) => {
  req.resume();
  if (fixed) {
    res.writeHead(200, fixed);
    res.end();
    return;
  }
  res.writeHead(200, plain);
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
