// The building sensor service of the building-sensors sample: a SOAP 1.1
// service (node-soap) on 127.0.0.1 that answers GetReadings and GetSensor
// for the customers in customers.json, to callers with an OAuth 2.0 access
// token from the sample's authorization server.
//
//   node sensor-service.mjs --port 0 --port-file F --oauth URL \
//        --introspect-client ID:SECRET [--exit-with-stdin]
//
// POST /sensors            SOAP 1.1 (the WSDL's only port); needs
//                          "Authorization: Bearer TOKEN", checked with the
//                          authorization server's /introspect (answers are
//                          kept until the token expires, at most a minute);
//                          the token's client must be the customer's
//                          sensor_client and hold the scope sensors.read
// GET  /sensors?wsdl       the WSDL, with soap:address set to this server
// GET  /__stats            {"requests": {"GetReadings": N, ...}, "wsdl": N,
//                          "rejected": N, "faults": N, "readings": N,
//                          "cached": N}
//
// The package `soap` comes from tests/fixtures/soap (scripts/npm-deps
// installs it from that folder's lock file).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readingsXml, sensorInfo, SENSOR_COUNT } from './readings.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, '..', '..', '..', 'tests', 'fixtures', 'soap');
const soap = createRequire(join(fixture, 'package.json'))('soap');

const NS = 'urn:example:building-sensors:2026';
const MAX_WINDOW_MINUTES = 24 * 60;

function usage(msg) {
    if (msg) process.stderr.write(`sensor-service: ${msg}\n`);
    process.stderr.write('usage: node sensor-service.mjs --port N --port-file F --oauth URL '
        + '--introspect-client ID:SECRET [--exit-with-stdin]\n');
    process.exit(2);
}

const opts = { port: 0, portFile: null, oauth: null, client: null, exitWithStdin: false };
for (let k = 2; k < process.argv.length; k++) {
    const a = process.argv[k];
    const next = () => (k + 1 < process.argv.length ? process.argv[++k] : usage(`${a} needs a value`));
    if (a === '--port') opts.port = Number(next());
    else if (a === '--port-file') opts.portFile = next();
    else if (a === '--oauth') opts.oauth = next().replace(/\/+$/, '');
    else if (a === '--introspect-client') opts.client = next();
    else if (a === '--exit-with-stdin') opts.exitWithStdin = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
}
if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('bad --port');
if (!opts.oauth || !opts.client || !opts.client.includes(':')) usage('--oauth and --introspect-client are required');

const customers = new Map();
for (const c of JSON.parse(readFileSync(join(here, 'customers.json'), 'utf8')).customers) {
    customers.set(c.customer_id, c);
}

const stats = { requests: {}, wsdl: 0, rejected: 0, faults: 0, readings: 0, cached: 0 };
const recent = new Map(); // customer/from/to -> the GetReadingsResponse element

// ------------------------------------------------------------ tokens

const introspectAuth = 'Basic ' + Buffer.from(opts.client.split(':').map(encodeURIComponent).join(':')).toString('base64');
const tokenCache = new Map(); // token -> {info, until}

async function introspect(token) {
    const now = Date.now();
    const hit = tokenCache.get(token);
    if (hit && hit.until > now) return hit.info;
    const r = await fetch(`${opts.oauth}/introspect`, {
        method: 'POST',
        headers: { Authorization: introspectAuth, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
    });
    if (r.status !== 200) throw new Error(`introspection answered ${r.status}`);
    const info = await r.json();
    if (info.active && info.token_type === 'Bearer') {
        const until = Math.min(now + 60000, (info.exp ?? 0) * 1000);
        if (tokenCache.size > 1000) tokenCache.clear();
        tokenCache.set(token, { info, until });
        return info;
    }
    return null;
}

function soapFault(status, code, text, detailCode) {
    return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:${code}</faultcode><faultstring>${text}</faultstring><detail><SensorServiceFault xmlns="${NS}"><code>${detailCode}</code><message>${text}</message></SensorServiceFault></detail></soap:Fault></soap:Body></soap:Envelope>`;
}

function reject(res, description) {
    stats.rejected++;
    const body = soapFault(401, 'Client', `invalid_token: ${description}`, 'invalid_token');
    res.writeHead(401, {
        'Content-Type': 'text/xml; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        'WWW-Authenticate': 'Bearer error="invalid_token"',
    });
    res.end(body);
}

// ------------------------------------------------------------ operations

function fault(code, message) {
    stats.faults++;
    return {
        Fault: {
            faultcode: 'soap:Client',
            faultstring: message,
            detail: { SensorServiceFault: { attributes: { xmlns: NS }, code, message } },
            statusCode: 500,
        },
    };
}

// The customer a request may read: its arguments name it, and the token's
// client must be that customer's sensor client.
function customerFor(args, req) {
    const c = customers.get(args.customerId);
    if (!c || c.building_id !== args.buildingId) {
        throw fault('unknown_building', `no building '${args.buildingId}' for customer '${args.customerId}'`);
    }
    if (req.auth.client_id !== c.sensor_client) {
        throw fault('forbidden', `client '${req.auth.client_id}' may not read customer '${c.customer_id}'`);
    }
    return c;
}

// node-soap hands xsd:dateTime arguments over as Date objects.
function minuteOf(value, name) {
    const ms = value instanceof Date ? value.getTime() : Date.parse(value);
    if (Number.isNaN(ms)) throw fault('bad_time', `${name} is not an xsd:dateTime`);
    return Math.ceil(ms / 60000);
}

const services = {
    BuildingSensorService: {
        SensorSoap11Port: {
            GetReadings(args, cb, headers, req) {
                stats.requests.GetReadings = (stats.requests.GetReadings ?? 0) + 1;
                const c = customerFor(args, req);
                const from = minuteOf(args.from, 'from');
                const to = minuteOf(args.to, 'to');
                if (to <= from || to - from > MAX_WINDOW_MINUTES) {
                    throw fault('bad_window', `the window must be more than 0 and at most 24 hours: ${args.from} to ${args.to}`);
                }
                stats.readings += (to - from) * SENSOR_COUNT;
                // 43,200 readings: the body is written here rather than by
                // node-soap's object serialiser, which takes seconds for
                // it, and the last few answers are kept, as a service
                // answering from a database would have them cached.
                const key = `${c.customer_id}/${from}/${to}`;
                let xml = recent.get(key);
                if (xml === undefined) {
                    xml = `<GetReadingsResponse xmlns="${NS}">${readingsXml(c, from, to)}</GetReadingsResponse>`;
                    if (recent.size >= 4) recent.delete(recent.keys().next().value);
                    recent.set(key, xml);
                } else {
                    stats.cached++;
                }
                return { _xml: xml };
            },
            GetSensor(args, cb, headers, req) {
                stats.requests.GetSensor = (stats.requests.GetSensor ?? 0) + 1;
                const c = customerFor(args, req);
                const m = /^T(\d\d)$/.exec(args.sensorId ?? '');
                const i = m ? Number(m[1]) - 1 : -1;
                if (i < 0 || i >= SENSOR_COUNT) throw fault('unknown_sensor', `no sensor '${args.sensorId}' in ${c.building_id}`);
                return { sensor: sensorInfo(i, c.building_id) };
            },
        },
    },
};

// ------------------------------------------------------------ server

const wsdlTemplate = readFileSync(join(here, 'sensors.wsdl'), 'utf8');
const inner = http.createServer(); // never listens: node-soap's request handler
const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
        process.stderr.write(`sensor-service: ${e.stack || e}\n`);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('internal error\n');
    });
});

async function handle(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/__stats') {
        const body = JSON.stringify(stats);
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
    }
    if (url.pathname !== '/sensors' && url.pathname !== '/sensors/') {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found\n');
        return;
    }
    if (req.method === 'POST') {
        const m = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
        if (!m) return reject(res, 'missing bearer token');
        const info = await introspect(m[1]);
        if (!info) return reject(res, 'token not valid');
        if (!(info.scope ?? '').split(' ').includes('sensors.read')) return reject(res, 'scope sensors.read missing');
        req.auth = info;
    } else if (req.method === 'GET' && url.search.toLowerCase().startsWith('?wsdl')) {
        stats.wsdl++;
    }
    inner.emit('request', req, res);
}

server.listen(opts.port, '127.0.0.1', () => {
    const port = server.address().port;
    const wsdl = wsdlTemplate.replace('location="http://127.0.0.1/sensors"', `location="http://127.0.0.1:${port}/sensors"`);
    soap.listen(inner, {
        path: '/sensors',
        services,
        xml: wsdl,
        enableChunkedEncoding: false,
        suppressStack: true,
    });
    // node-soap reads the WSDL asynchronously; the port file says "ready".
    setTimeout(function ready() {
        if (inner.listeners('request').length === 0) {
            setTimeout(ready, 10);
            return;
        }
        if (opts.portFile) {
            writeFileSync(`${opts.portFile}.tmp`, `${port}\n`);
            renameSync(`${opts.portFile}.tmp`, opts.portFile);
        }
    }, 0);
});

function stop() {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (opts.exitWithStdin) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
}
