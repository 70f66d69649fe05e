// A real gRPC client (@grpc/grpc-js) for the sidecar's interop tests.
// Usage: node node_client.js HOST:PORT PROTO_ROOT TEST_PROTO_ROOT CASE
// Loads the .proto files at run time (@grpc/proto-loader) and prints one JSON object with what the case
// observed; the C# test asserts on it.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [target, protoRoot, testProtoRoot, testCase] = process.argv.slice(2);
const STREAM_COUNT = 10000;
const MAX_MESSAGE = 4 * 1024 * 1024;
const loaderOptions = { keepCase: true, longs: Number, enums: String, defaults: true, includeDirs: [protoRoot, testProtoRoot] };
const load = (file) => grpc.loadPackageDefinition(protoLoader.loadSync(file, loaderOptions));

const interop = load('interop_test.proto').slideplugin.testing.v1;
const health = load('health/v1/health.proto').grpc.health.v1;
const reflectionV1 = load('grpc/reflection/v1/reflection.proto').grpc.reflection.v1;
const reflectionV1Alpha = load('grpc/reflection/v1alpha/reflection.proto').grpc.reflection.v1alpha;
const credentials = grpc.credentials.createInsecure();
const client = new interop.InteropTestService(target, credentials);

const deadlineIn = (ms) => new Date(Date.now() + ms);
const codeName = (code) => Object.keys(grpc.status).find((k) => grpc.status[k] === code);
const asError = (e) => ({ code: codeName(e.code), details: e.details });
const unary = (c, method, request, options = {}, metadata = new grpc.Metadata()) =>
    new Promise((resolve, reject) => c[method](request, metadata, { deadline: deadlineIn(10000), ...options }, (e, r) => (e ? reject(e) : resolve(r))));
const collect = (call) => new Promise((resolve, reject) => {
    const items = [];
    call.on('data', (d) => items.push(d));
    call.on('error', reject);
    call.on('end', () => resolve(items));
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function observeCancel(id) {
    for (let i = 0; i < 100; i++) {
        const o = await unary(client, 'GetCancelObservation', { id });
        if (o.cancelled) return o;
        await sleep(50);
    }
    return { cancelled: false, deadline_exceeded: false };
}

const cases = {
    async unary() {
        const r = await unary(client, 'Echo', { message: 'héllo', payload: Buffer.from([0, 1, 254, 255]) });
        return { message: r.message, payload: [...r.payload] };
    },
    async unary_error() {
        try {
            await unary(client, 'Echo', { status_code: 5, status_message: "slide 'ü' not found: 100% gone\n" });
            return {};
        } catch (e) { return asError(e); }
    },
    async server_stream() {
        const chunks = await collect(client.StreamOut({ count: STREAM_COUNT, size: 32 }, { deadline: deadlineIn(60000) }));
        return { count: chunks.length, ordered: chunks.every((c, i) => c.index === i) };
    },
    async client_stream() {
        const r = await new Promise((resolve, reject) => {
            const call = client.StreamIn({ deadline: deadlineIn(60000) }, (e, res) => (e ? reject(e) : resolve(res)));
            let i = 0;
            const pump = () => {
                while (i < STREAM_COUNT) {
                    const ok = call.write({ index: i, payload: Buffer.alloc(32, 120) });
                    i++;
                    if (!ok) { call.once('drain', pump); return; }   // respect backpressure
                }
                call.end();
            };
            pump();
        });
        return { count: r.count, total_bytes: r.total_bytes };
    },
    async duplex() {
        const call = client.Duplex({ deadline: deadlineIn(60000) });
        const received = collect(call);
        for (let i = 0; i < STREAM_COUNT; i++) {
            if (!call.write({ index: i, payload: Buffer.alloc(32, 121) })) await new Promise((r) => call.once('drain', r));
        }
        call.end();
        const chunks = await received;
        return { count: chunks.length, ordered: chunks.every((c, i) => c.index === i) };
    },
    async deadline() { return waitCase(2000, false); },
    async cancel() { return waitCase(30000, true); },
    async oversize() {
        const payload = Buffer.alloc(MAX_MESSAGE + 1 - 1 - 4, 122);  // tag + 4-byte length + payload = 4 MiB + 1
        let result = {};
        try { await unary(client, 'Echo', { payload }, { deadline: deadlineIn(30000) }); } catch (e) { result = asError(e); }
        result.then_unary_ok = (await unary(client, 'Echo', { message: 'still here' })).message === 'still here';
        return result;
    },
    async unknown_method() {
        const raw = new grpc.Client(target, credentials);
        const call = (p) => new Promise((resolve) => raw.makeUnaryRequest(p, (x) => x, (x) => x, Buffer.alloc(0), new grpc.Metadata(),
            { deadline: deadlineIn(10000) }, (e) => resolve(e ? asError(e) : {})));
        return {
            method: await call('/slideplugin.testing.v1.InteropTestService/NoSuchMethod'),
            service: await call('/slideplugin.testing.v1.NoSuchService/Echo'),
        };
    },
    async metadata() {
        const md = new grpc.Metadata();
        md.set('x-echo-text', 'plain value');
        md.set('x-echo-bin', Buffer.from([0, 1, 255]));
        return new Promise((resolve, reject) => {
            const out = {};
            const call = client.Echo({ message: 'md' }, md, { deadline: deadlineIn(10000) }, (e) => { if (e) reject(e); });
            call.on('metadata', (m) => { out.header_text = m.get('x-echo-text')[0]; out.header_bin = [...m.get('x-echo-bin')[0]]; });
            call.on('status', (s) => {
                out.trailer_text = s.metadata.get('x-trailer-text')[0];
                out.trailer_bin = [...s.metadata.get('x-trailer-bin')[0]];
                resolve(out);
            });
        });
    },
    async health() {
        const h = new health.Health(target, credentials);
        const out = {};
        out.overall = (await unary(h, 'Check', { service: '' })).status;
        out.service = (await unary(h, 'Check', { service: 'slideplugin.testing.v1.InteropTestService' })).status;
        try { await unary(h, 'Check', { service: 'no.such.Service' }); } catch (e) { out.unknown = asError(e); }
        const first = (service) => new Promise((resolve, reject) => {
            const w = h.Watch({ service }, { deadline: deadlineIn(30000) });
            w.once('data', (d) => { resolve(d.status); w.cancel(); });
            w.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
        });
        out.watch_first = await first('');
        out.watch_unknown_first = await first('no.such.Service');
        return out;
    },
    async reflection() {
        const out = {};
        for (const [version, pkg] of [['v1', reflectionV1], ['v1alpha', reflectionV1Alpha]]) {
            const r = new pkg.ServerReflection(target, credentials);
            const ask = (requests) => {
                const call = r.ServerReflectionInfo({ deadline: deadlineIn(10000) });
                const answers = collect(call);
                requests.forEach((q) => call.write(q));
                call.end();
                return answers;
            };
            const [list] = await ask([{ host: 'localhost', list_services: '' }]);
            const services = list.list_services_response.service.map((s) => s.name);
            const answers = await ask([...services.map((s) => ({ file_containing_symbol: s })), { file_containing_symbol: 'no.such.Symbol' },
                { file_by_filename: 'health/v1/health.proto' }]);
            // A FileDescriptorProto holds its service and method names as plain strings: enough to check each answer is the right file.
            const resolved = {};
            services.forEach((name, i) => {
                const files = answers[i].file_descriptor_response.file_descriptor_proto;
                const serviceName = name.split('.').pop();
                resolved[name] = files.length > 0 && files[0].includes(Buffer.from(serviceName));
            });
            out[version] = {
                services,
                resolved,
                unknown_symbol_code: answers[services.length].error_response.error_code,
                file_by_name_count: answers[services.length + 1].file_descriptor_response.file_descriptor_proto.length,
            };
        }
        return out;
    },
};

async function waitCase(deadlineMs, cancel) {
    const id = `node-${cancel ? 'cancel' : 'deadline'}-${process.hrtime.bigint()}`;
    const call = client.WaitForCancel({ id }, { deadline: deadlineIn(deadlineMs) });
    const result = await new Promise((resolve) => {
        call.once('data', () => { if (cancel) call.cancel(); });
        call.on('error', (e) => resolve(asError(e)));
        call.on('end', () => resolve({}));
    });
    const observed = await observeCancel(id);
    result.server_cancelled = observed.cancelled;
    result.server_deadline_exceeded = observed.deadline_exceeded;
    return result;
}

(async () => {
    const run = cases[testCase];
    if (!run) throw new Error(`unknown case ${testCase}`);
    const result = await run();
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
