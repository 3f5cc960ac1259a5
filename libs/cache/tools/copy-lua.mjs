// tsc compiles the TypeScript only: the Lua scripts the cache runs are copied next to their loader in dist/.
import { cpSync } from 'node:fs';

cpSync(new URL('../src/scripts', import.meta.url), new URL('../dist/scripts', import.meta.url), {
  recursive: true,
  filter: (source) => !/\.[cm]?ts$/.test(source),
});
