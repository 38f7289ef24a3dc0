// A reference for the proxy run: the smallest sensible reverse proxy on undici's
// Pool (keep-alive, dispatch API, small bodies read first), with no
// authentication and no identity headers. The issue puts such a proxy at about
// 0.33x of the upstream reached directly; measured in the same run, it shows
// what is left for trackgate's own work.
import http from 'node:http';
import { Pool } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length', 'te', 'upgrade', 'proxy-connection', 'trailer']);
const pool = new Pool(process.env.BENCH_UPSTREAM, { connections: 128, pipelining: 1 });

const server = http.createServer((req, res) => {
  const raw = req.rawHeaders;
  const headers = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let abort = null;
    let done = false;
    // A client that goes away mid-answer must release the upstream connection: without this, each
    // request cut off at the end of a load run left one pooled connection paused for good, and after
    // a few runs the pool had none left (the proxy stopped answering).
    res.on('close', () => {
      if (!done && abort) abort(new Error('client went away'));
    });
    pool.dispatch(
      { path: req.url, method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : null },
      {
        onConnect(a) {
          abort = a;
          if (res.destroyed) a(new Error('client went away'));
        },
        onHeaders(status, rawRes, resume) {
          const out = [];
          for (let i = 0; i < rawRes.length; i += 2) {
            const name = rawRes[i].toString('latin1');
            if (!HOP.has(name.toLowerCase()) || name.toLowerCase() === 'content-length') out.push(name, rawRes[i + 1].toString('latin1'));
          }
          res.writeHead(status, out);
          res.on('drain', resume);
          return true;
        },
        onData(chunk) {
          return res.write(chunk);
        },
        onComplete() {
          done = true;
          res.end();
        },
        onError() {
          done = true;
          if (res.destroyed) return;
          if (!res.headersSent) res.writeHead(502);
          res.end();
        },
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
