// Creates every shader module in a directory (as `wgconv shaders --webgpu DIR` writes them) and
// every compute pipeline in it with Dawn, Chromium's WebGPU, whose WGSL compiler is Tint: what a
// browser will do with wgconv's shaders. Prints each error as `FILE:LINE:COLUMN: message` and
// exits 1 if any module or pipeline fails, 2 if no adapter is found.
//
// Usage: node check.mjs DIR   (after `npm install` here; see scripts/README.md)
import { create, globals } from 'webgpu';
import fs from 'node:fs';
import path from 'node:path';

Object.assign(globalThis, globals);

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node check.mjs DIR');
  process.exit(2);
}
// Kept in a variable: Dawn's instance must outlive the adapter and device it made.
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('no WebGPU adapter (Dawn refuses Mesa 22 lavapipe: point VK_ICD_FILENAMES at SwiftShader)');
  process.exit(2);
}
const info = adapter.info ?? {};
console.log(`adapter: ${info.description || info.device || 'unknown'} (${info.vendor || ''} ${info.architecture || ''})`);
// The features a module may ask for with `enable`; everything else is WebGPU core.
const wanted = ['subgroups'].filter((f) => adapter.features.has(f));
const device = await adapter.requestDevice({ requiredFeatures: wanted });

let failures = 0;
let modules = 0;
let pipelines = 0;
const files = fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.wgsl')).sort();
if (files.length === 0) {
  console.error(`no .wgsl files under ${dir}`);
  process.exit(2);
}
for (const file of files) {
  const code = fs.readFileSync(path.join(dir, file), 'utf8');
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code, label: file });
  const compilation = await module.getCompilationInfo();
  const scoped = await device.popErrorScope();
  let failed = false;
  for (const m of compilation.messages) {
    if (m.type === 'error') {
      console.log(`${file}:${m.lineNum}:${m.linePos}: ${m.message}`);
      failed = true;
    }
  }
  if (scoped && !failed) {
    console.log(`${file}: ${scoped.message}`);
    failed = true;
  }
  if (failed) {
    failures++;
    continue;
  }
  modules++;
  // Compute entry points: `@compute` then any other attributes, then `fn NAME(`.
  const entries = [...code.matchAll(/@compute[^\n]*\n(?:\s*@[^\n]*\n)*\s*fn\s+(\w+)/g)].map((m) => m[1]);
  if (entries.length === 0) {
    console.log(`${file}: no compute entry point found`);
    failures++;
  }
  // Boolean overrides (the conv epilogue's HAS_BIAS, HAS_ACTIVATION): each entry point is
  // built with their defaults and again with all of them true, as wgconv builds it for a call
  // with a bias and an activation.
  const flags = [...code.matchAll(/override\s+(\w+)\s*:\s*bool/g)].map((m) => m[1]);
  const settings = [{}];
  if (flags.length > 0) settings.push(Object.fromEntries(flags.map((f) => [f, 1])));
  for (const entryPoint of entries) {
    for (const constants of settings) {
      device.pushErrorScope('validation');
      device.pushErrorScope('internal');
      device.createComputePipeline({ label: `${file}:${entryPoint}`, layout: 'auto', compute: { module, entryPoint, constants } });
      const internal = await device.popErrorScope();
      const validation = await device.popErrorScope();
      for (const e of [validation, internal]) {
        if (e) {
          console.log(`${file}: ${entryPoint} ${JSON.stringify(constants)}: ${e.message}`);
        }
      }
      if (validation || internal) failures++;
      else pipelines++;
    }
  }
}
console.log(`${modules} of ${files.length} modules and ${pipelines} pipelines built, ${failures} failures`);
// Exit explicitly: Dawn's threads would keep the process alive.
process.exit(failures ? 1 : 0);
