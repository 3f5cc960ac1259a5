// Runs the TypeScript sources under plain Node (ESM): `node --import ./bench/register.mjs bench/x.bench.ts`.
// Each .ts file is transpiled on its own by the installed `typescript`; `npm run typecheck` does the type checking.
import { existsSync, readFileSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import ts from 'typescript';

const root = new URL('../', import.meta.url);
// Every entry point of the package, so that a bench never loads one part from src/ and another
// from dist/ (two copies of a class: Nest's injection tokens would not match).
const aliases = {
  '@cachekit/cache': new URL('libs/cache/src/index.ts', root).href,
  '@cachekit/cache/health': new URL('libs/cache/src/health/index.ts', root).href,
  '@cachekit/cache/cdc': new URL('libs/cache/src/invalidation/cdc/index.ts', root).href,
  '@cachekit/cache/write-behind': new URL('libs/cache/src/write-behind/index.ts', root).href,
  '@cachekit/users-domain': new URL('libs/users-domain/src/index.ts', root).href,
};
const compilerOptions = {
  target: ts.ScriptTarget.ES2023,
  module: ts.ModuleKind.ESNext,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  isolatedModules: true,
};

export async function resolve(specifier, context, nextResolve) {
  if (Object.hasOwn(aliases, specifier)) return { url: aliases[specifier], shortCircuit: true };
  // Sources import `./x.js` (nodenext style); load `./x.ts` when that is what exists.
  if (context.parentURL?.endsWith('.ts') && /^\.{1,2}\/.*\.js$/.test(specifier)) {
    const url = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
    if (existsSync(url)) return { url: url.href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) return nextLoad(url, context);
  const { outputText } = ts.transpileModule(readFileSync(new URL(url), 'utf8'), {
    fileName: fileURLToPath(url),
    compilerOptions,
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}

// This file is also loaded as the hooks module itself, on the loader thread; register only once, from the app.
if (isMainThread) register(import.meta.url);
