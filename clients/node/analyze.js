#!/usr/bin/env node
// Analyses a slide on a running sidecar and writes its QuPath GeoJSON.
//   npm ci --prefix clients/node
//   node clients/node/analyze.js CMU-1-Small-Region.svs [--address 127.0.0.1:50051] [--token T] [--out .]
// The .proto files are loaded at run time (@grpc/proto-loader) from proto/ and the google/api folder that
// clients/googleapis-path.sh prints. The slide path is relative to one of the server's --slide-root folders.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const repo = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : fallback;
};
const address = option('--address', (process.env.SLIDEPLUGIN_ADDRESS || '127.0.0.1:50051').replace(/^http:\/\//, ''));
const token = option('--token', process.env.SLIDEPLUGIN_TOKEN);
const out = option('--out', '.');
const slide = args[0];
if (!slide) {
    console.error('usage: analyze.js SLIDE [--address HOST:PORT] [--token T] [--out DIR]');
    process.exit(2);
}

const googleapis = execFileSync(path.join(repo, 'clients', 'googleapis-path.sh'), { encoding: 'utf8' }).trim();
const definition = protoLoader.loadSync('slideplugin/v1/analysis_service.proto',
    { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [path.join(repo, 'proto'), googleapis] });
const v1 = grpc.loadPackageDefinition(definition).slideplugin.v1;
const client = new v1.AnalysisService(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 8 * 1024 * 1024 });
const metadata = new grpc.Metadata();
if (token) metadata.set('authorization', `Bearer ${token}`);

function analyze() {
    return new Promise((resolve, reject) => {
        let result = null;
        const call = client.AnalyzeSlide({ path: slide }, metadata);
        call.on('data', (message) => {
            if (message.event === 'progress') {
                process.stderr.write(`\r${message.progress.tilesDone}/${message.progress.tileCount} tiles`);
            } else if (message.event === 'result') {
                result = message.result;
            }
        });
        call.on('error', reject);
        call.on('end', () => { process.stderr.write('\n'); resolve(result); });
    });
}

function exportGeoJson(key) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        const call = client.ExportAnalysis({ key, format: 'EXPORT_FORMAT_GEOJSON' }, metadata);
        call.on('data', (chunk) => chunks.push(chunk.data));
        call.on('error', reject);
        call.on('end', () => resolve(Buffer.concat(chunks)));
    });
}

(async () => {
    try {
        const result = await analyze();
        const geojson = await exportGeoJson(result.header.key);
        fs.mkdirSync(out, { recursive: true });
        const file = path.join(out, path.basename(slide, path.extname(slide)) + '.geojson');
        fs.writeFileSync(file + '.tmp', geojson);
        fs.renameSync(file + '.tmp', file);
        const probabilities = result.header.classes.map((c, i) => `${c} ${result.probabilities[i].toFixed(3)}`).join(', ');
        console.log(`${slide}: ${result.predictedClassName} (${probabilities}); ${result.header.tileCount} tiles`);
        console.log(file);
    } catch (e) {
        console.error(`analyze: ${grpc.status[e.code] || e.code}: ${e.details || e.message}`);
        process.exit(1);
    } finally {
        client.close();
    }
})();
