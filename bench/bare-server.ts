/**
 * The load test's `bare` row: the least a node:http server can do per request on this machine. It
 * reads each request's body and answers every POST with one fixed JSON text of the size of a
 * stream step's answer (?top=4); no routing, no parsing, no metrics, no model. What autocannon and
 * node:http cost per request together, on the same cores, bounds every server measured beside it.
 *
 *   node --import tsx bench/bare-server.ts --port 0 --host 127.0.0.1
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
const answer = Buffer.from('{"top":[[37,0.1234567],[102,0.1134567],[5,0.1034567],[211,0.0934567]]}');
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), values.host, () => {
  const a = server.address();
  if (a && typeof a === 'object') console.log(`listening on http://${values.host}:${a.port}`);
});
process.once('SIGTERM', () => process.exit(0));
